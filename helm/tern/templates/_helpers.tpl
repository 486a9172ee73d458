{{- define "tern.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "tern.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "tern.selector" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "tern.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* Edges hold their own edge-scoped token ("edge-token" in the Secret)
     and the coordinator a tokens file that names it. */}}
{{- define "tern.scopedEdges" -}}
{{- if or .Values.auth.edgeToken (and .Values.auth.existingSecret .Values.auth.scopedEdges) }}true{{ end -}}
{{- end -}}

{{- define "tern.validateTls" -}}
{{- if and .Values.coordinator.httpTls (not (include "tern.coordinatorTlsSecret" .)) -}}
{{- fail "coordinator.httpTls needs coordinator.grpcTlsSecret or certManager.enabled (the HTTP listener uses the same certificate)" -}}
{{- end -}}
{{- if and .Values.certManager.enabled (not .Values.certManager.issuerRef.name) -}}
{{- fail "certManager.enabled needs certManager.issuerRef.name" -}}
{{- end -}}
{{- end -}}

{{- define "tern.secretName" -}}
{{- .Values.auth.existingSecret | default (printf "%s-auth" (include "tern.fullname" .)) -}}
{{- end -}}

{{- define "tern.coordinatorGrpc" -}}
{{ include "tern.fullname" . }}-coordinator:{{ .Values.coordinator.service.grpcPort }}
{{- end -}}

{{/* "true" when the coordinator runs as replicas sharing the purge log in etcd. */}}
{{- define "tern.coordinatorReplicated" -}}
{{- if or .Values.etcd.enabled .Values.coordinator.etcd.endpoints }}true{{ end -}}
{{- end -}}

{{/* coordinator.replicas, or its default: 3 with etcd, 1 without. */}}
{{- define "tern.coordinatorReplicas" -}}
{{- if kindIs "invalid" .Values.coordinator.replicas -}}
{{- if include "tern.coordinatorReplicated" . }}3{{ else }}1{{ end -}}
{{- else -}}
{{- int .Values.coordinator.replicas -}}
{{- end -}}
{{- end -}}

{{/* The etcd members of the coordinator replicas, comma-separated host:port:
     the chart's own (etcd.enabled) or coordinator.etcd.endpoints. */}}
{{- define "tern.etcdEndpoints" -}}
{{- if .Values.etcd.enabled -}}
{{- $name := printf "%s-etcd" (include "tern.fullname" .) -}}
{{- $members := list -}}
{{- range $i := until (int .Values.etcd.replicas) -}}
{{- $members = append $members (printf "%s-%d.%s.%s.svc.%s:2379" $name $i $name $.Release.Namespace $.Values.clusterDomain) -}}
{{- end -}}
{{- join "," $members -}}
{{- else -}}
{{- join "," .Values.coordinator.etcd.endpoints -}}
{{- end -}}
{{- end -}}

{{/* What values.schema.json cannot say: rules across values. */}}
{{- define "tern.validate" -}}
{{- if and .Values.etcd.enabled .Values.coordinator.etcd.endpoints -}}
{{- fail "etcd.enabled and coordinator.etcd.endpoints: choose one (the chart's etcd members, or your own)" -}}
{{- end -}}
{{- $replicas := int (include "tern.coordinatorReplicas" .) -}}
{{- if include "tern.coordinatorReplicated" . -}}
{{- if lt $replicas 1 -}}
{{- fail "coordinator.replicas: at least 1 with etcd (edges need a coordinator to connect to)" -}}
{{- end -}}
{{- else if gt $replicas 1 -}}
{{- fail "coordinator.replicas above 1 needs etcd (coordinator.etcd.endpoints or etcd.enabled): one coordinator keeps its purge log on its own volume" -}}
{{- end -}}
{{- end -}}

{{/* The headless Service of the coordinator replicas (a DNS label: 63 at most). */}}
{{- define "tern.coordinatorPods" -}}
{{- printf "%s-coordinator-pods" (include "tern.fullname" . | trunc 46 | trimSuffix "-") -}}
{{- end -}}

{{/* The coordinator address given to the edges: with replicas, the headless
     Service, whose DNS name answers with every replica's pod address. */}}
{{- define "tern.edgeCoordinatorAddress" -}}
{{- if include "tern.coordinatorReplicated" . -}}
{{ include "tern.coordinatorPods" . }}:{{ .Values.coordinator.service.grpcPort }}
{{- else -}}
{{ include "tern.coordinatorGrpc" . }}
{{- end -}}
{{- end -}}

{{/* Pod anti-affinity across nodes; dict: root, component, mode (soft | hard). */}}
{{- define "tern.antiAffinity" -}}
affinity:
  podAntiAffinity:
    {{- if eq .mode "hard" }}
    requiredDuringSchedulingIgnoredDuringExecution:
      - topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels:
            {{- include "tern.selector" . | nindent 12 }}
    {{- else }}
    preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 100
        podAffinityTerm:
          topologyKey: kubernetes.io/hostname
          labelSelector:
            matchLabels:
              {{- include "tern.selector" . | nindent 14 }}
    {{- end }}
{{- end -}}

{{/* The coordinator's TLS Secret ("" : plaintext gRPC). */}}
{{- define "tern.coordinatorTlsSecret" -}}
{{- if .Values.coordinator.grpcTlsSecret -}}
{{ .Values.coordinator.grpcTlsSecret }}
{{- else if .Values.certManager.enabled -}}
{{ include "tern.fullname" . }}-coordinator-tls
{{- end -}}
{{- end -}}

{{/* The Secret whose ca.crt verifies the coordinator ("" : system roots). */}}
{{- define "tern.coordinatorCaSecret" -}}
{{- if .Values.coordinator.caBundleSecret -}}
{{ .Values.coordinator.caBundleSecret }}
{{- else if and .Values.certManager.enabled (not .Values.coordinator.grpcTlsSecret) -}}
{{ include "tern.fullname" . }}-coordinator-tls
{{- end -}}
{{- end -}}

{{/* The edges' TLS Secret ("" : no TLS listener). */}}
{{- define "tern.edgeTlsSecret" -}}
{{- if .Values.edge.tlsSecret -}}
{{ .Values.edge.tlsSecret }}
{{- else if and .Values.certManager.enabled .Values.edge.tlsDnsNames -}}
{{ include "tern.fullname" . }}-edge-tls
{{- end -}}
{{- end -}}
