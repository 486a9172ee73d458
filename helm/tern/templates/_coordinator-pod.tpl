{{/* The coordinator's pod template: of the StatefulSet (one coordinator, its
     log on the "data" volume) or of the Deployment (replicas, log in etcd). */}}
{{- define "tern.coordinatorPod" -}}
{{- include "tern.validateTls" . -}}
{{- $replicated := include "tern.coordinatorReplicated" . -}}
metadata:
  labels:
    {{- include "tern.labels" . | nindent 4 }}
    app.kubernetes.io/component: coordinator
  annotations:
    checksum/config: {{ include (print $.Template.BasePath "/configmap.yaml") . | sha256sum }}
spec:
  {{- with .Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    {{- toYaml .Values.podSecurityContext | nindent 4 }}
  terminationGracePeriodSeconds: 30
  {{- if and $replicated (ne .Values.coordinator.antiAffinity "none") }}
  {{- include "tern.antiAffinity" (dict "root" . "component" "coordinator" "mode" .Values.coordinator.antiAffinity) | nindent 2 }}
  {{- end }}
  containers:
    - name: coordinator
      image: {{ include "tern.image" . }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      command: ["tern-coordinator", "--config", "/etc/tern/coordinator.yaml"]
      {{- with .Values.coordinator.extraArgs }}
      args:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      env:
        - name: TERN_COORDINATOR_AUTH_TOKEN
          valueFrom:
            secretKeyRef:
              name: {{ include "tern.secretName" . }}
              key: token
        {{- if include "tern.scopedEdges" . }}
        - name: TERN_COORDINATOR_AUTH_TOKENS_FILE
          value: /etc/tern/auth/tokens.yaml
        {{- end }}
        {{- if $replicated }}
        # The replica's name in etcd and on the status page: the pod's.
        - name: TERN_COORDINATOR_REPLICA_ID
          valueFrom: {fieldRef: {fieldPath: metadata.name}}
        - name: POD_IP
          valueFrom: {fieldRef: {fieldPath: status.podIP}}
        # Dialed by the other replicas (progress streams); shown on the status page.
        - name: TERN_COORDINATOR_REPLICA_ADDRESS
          value: "$(POD_IP):{{ .Values.coordinator.service.grpcPort }}"
        {{- end }}
      ports:
        - name: http
          containerPort: {{ .Values.coordinator.service.httpPort }}
        - name: grpc
          containerPort: {{ .Values.coordinator.service.grpcPort }}
      {{- $scheme := ternary "HTTPS" "HTTP" (and .Values.coordinator.httpTls (ne (include "tern.coordinatorTlsSecret" .) "")) }}
      readinessProbe:
        httpGet: {path: /readyz, port: http, scheme: {{ $scheme }}}
        periodSeconds: 5
      livenessProbe:
        httpGet: {path: /healthz, port: http, scheme: {{ $scheme }}}
        periodSeconds: 10
        failureThreshold: 6
      resources:
        {{- toYaml .Values.coordinator.resources | nindent 8 }}
      securityContext:
        allowPrivilegeEscalation: false
        readOnlyRootFilesystem: true
        capabilities: {drop: ["ALL"]}
      volumeMounts:
        {{- if not $replicated }}
        - {name: data, mountPath: /var/lib/tern}
        {{- end }}
        - {name: config, mountPath: /etc/tern/coordinator.yaml, subPath: coordinator.yaml}
        {{- if include "tern.scopedEdges" . }}
        - {name: auth, mountPath: /etc/tern/auth, readOnly: true}
        {{- end }}
        {{- if include "tern.coordinatorTlsSecret" . }}
        - {name: grpc-tls, mountPath: /etc/tern/grpc-tls, readOnly: true}
        {{- end }}
  volumes:
    - name: config
      configMap:
        name: {{ include "tern.fullname" . }}-config
    {{- if include "tern.scopedEdges" . }}
    - name: auth
      secret:
        secretName: {{ include "tern.secretName" . }}
        items: [{key: tokens.yaml, path: tokens.yaml}]
    {{- end }}
    {{- if include "tern.coordinatorTlsSecret" . }}
    - name: grpc-tls
      secret:
        secretName: {{ include "tern.coordinatorTlsSecret" . }}
    {{- end }}
  {{- with .Values.coordinator.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.coordinator.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}
