// Control-plane security end to end: a real tern-coordinator with a tokens
// file, real tern-edge processes, real gRPC (and TLS with client
// certificates made by the openssl command line).
//
// Edges join only as the ids their credential names and cannot purge; a
// token scoped to hosts purges only inside them, also through PURGE at an
// edge (which forwards the caller's own token); a read-only token reads;
// every purge carries its requester; a SIGHUP re-reads the tokens file
// without touching edge streams; with mTLS an edge is its certificate.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <grpcpp/grpcpp.h>

#include <boost/json.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "tern/v1/purge.grpc.pb.h"
#include "tests/support/coordinator_process.h"
#include "tests/support/edge_process.h"
#include "tests/support/http_client.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_origin.h"
#include "tests/support/wait.h"

namespace tern::testing {
namespace {

namespace json = boost::json;

constexpr const char* kAdmin = "security-admin-token-0001";  // --auth.token: every scope
constexpr const char* kWww = "www-deploy-token-000000001";
constexpr const char* kWww2 = "www-deploy-token-000000002";
constexpr const char* kReader = "dashboard-token-0000000001";
constexpr const char* kEdge = "edge-credential-000000001";

std::string tokensFile(const std::string& www_name, const std::string& www_token) {
  return "tokens:\n"
         "  - name: " +
         www_name +
         "\n"
         "    token: " +
         www_token +
         "\n"
         "    scopes: [purge]\n"
         "    hosts: [www.example]\n"
         "    tag_prefix: \"www-\"\n"
         "  - name: dashboard\n"
         "    token: " +
         std::string(kReader) +
         "\n"
         "    scopes: [read]\n"
         "  - name: edges\n"
         "    token: " +
         std::string(kEdge) +
         "\n"
         "    scopes: [edge]\n"
         "    edge_ids: [\"edge-*\"]\n";
}

bool ready(EdgeProcess& e) { return httpGet(e.adminPort(), "/readyz").status == 200; }

// Metric value from a Prometheus text page (-1 when absent).
double metric(const std::string& page, const std::string& name) {
  size_t at = page.find("\n" + name + " ");
  if (at == std::string::npos) return -1;
  return std::atof(page.c_str() + at + name.size() + 2);
}

class SecurityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tokens_path_ = dir_.sub("tokens.yaml");
    std::ofstream(tokens_path_) << tokensFile("www-deploy", kWww);
    coordinator_ = std::make_unique<CoordinatorProcess>(
        dir_.sub("coordinator"), std::vector<std::string>{"--lease", "1s", "--auth.token", kAdmin,
                                                          "--auth.tokens_file", tokens_path_});
    ASSERT_TRUE(coordinator_->ok()) << coordinator_->log();
    edge_ = startEdge("edge-1", kEdge);
    ASSERT_TRUE(edge_->ok()) << edge_->log();
    ASSERT_TRUE(eventually([&] { return ready(*edge_); })) << edge_->log();
  }

  std::unique_ptr<EdgeProcess> startEdge(const std::string& id, const std::string& token) {
    return std::make_unique<EdgeProcess>(
        dir_.sub(id), origin_.url(),
        std::vector<std::string>{"--coordinator.address", coordinator_->grpcAddress(),
                                 "--coordinator.edge_id", id, "--coordinator.token", token,
                                 "--purge.enabled", "true", "--log.access", "false"});
  }

  HttpResponse post(const std::string& token, const std::string& body) {
    return httpRequest(coordinator_->httpPort(), "POST", "/v1/purge",
                       {{"Content-Type", "application/json"}, {"Authorization", "Bearer " + token}},
                       body, 30000);
  }
  HttpResponse get(const std::string& token, const std::string& target) {
    return httpRequest(coordinator_->httpPort(), "GET", target,
                       {{"Authorization", "Bearer " + token}}, "", 30000);
  }
  grpc::Status grpcPurge(const std::string& token, const std::string& url,
                         tern::v1::PurgeMode mode = tern::v1::PURGE_MODE_HARD) {
    auto stub = tern::v1::PurgeService::NewStub(
        grpc::CreateChannel(coordinator_->grpcAddress(), grpc::InsecureChannelCredentials()));
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + token);
    tern::v1::PurgeRequest req;
    req.add_selectors()->set_url(url);
    req.set_mode(mode);
    tern::v1::PurgeResult res;
    return stub->Purge(&ctx, req, &res);
  }
  HttpResponse purgeAtEdge(const std::string& host, const std::string& path,
                           const std::string& token) {
    HeaderList h = {{"Host", host}};
    if (!token.empty()) h.push_back({"Authorization", "Bearer " + token});
    return httpRequest(edge_->port(), "PURGE", path, h, "", 30000);
  }

  TempDir dir_;
  TestOrigin origin_;
  std::string tokens_path_;
  std::unique_ptr<CoordinatorProcess> coordinator_;
  std::unique_ptr<EdgeProcess> edge_;
};

TEST_F(SecurityTest, AnEdgeCredentialJoinsOnlyAsItsIdsAndCannotPurge) {
  // Another id than its credential allows: refused (PERMISSION_DENIED is
  // gRPC code 7), and never ready.
  auto intruder = startEdge("intruder", kEdge);
  ASSERT_TRUE(intruder->ok());
  ASSERT_TRUE(eventually([&] {
    return coordinator_->log().find("may not join as edge 'intruder'") != std::string::npos;
  })) << coordinator_->log();
  EXPECT_EQ(httpGet(intruder->adminPort(), "/readyz").status, 503);
  // A purge credential is not an edge credential either.
  auto impostor = startEdge("edge-2", kWww);
  ASSERT_TRUE(impostor->ok());
  ASSERT_TRUE(eventually([&] {
    return coordinator_->log().find("'www-deploy' lacks the edge scope") != std::string::npos;
  })) << coordinator_->log();
  EXPECT_EQ(httpGet(impostor->adminPort(), "/readyz").status, 503);
  auto edges = json::parse(get(kAdmin, "/v1/edges").body).as_object();
  ASSERT_EQ(edges["edges"].as_array().size(), 1u);
  EXPECT_EQ(edges["edges"].as_array()[0].as_object()["edge_id"], "edge-1");

  // The edge's credential purges nothing, over either API, hard or soft.
  auto r = post(kEdge, R"({"urls":["http://www.example/a"]})");
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_NE(r.body.find("permission_denied"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("'edges'"), std::string::npos) << r.body;
  EXPECT_EQ(post(kEdge, R"({"urls":["http://www.example/a"],"mode":"soft"})").status, 403);
  EXPECT_EQ(post(kEdge, R"({"purge_everything":true})").status, 403);
  EXPECT_EQ(grpcPurge(kEdge, "www.example/a").error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(get(kEdge, "/v1/edges").status, 403) << "and reads nothing";
  const std::string out = dir_.sub("ctl.out");
  EXPECT_EQ(runCtl(out, {"--coordinator", coordinator_->grpcAddress(), "--token", kEdge, "purge",
                         "--url", "www.example/a"}),
            4);
  // Nothing was logged.
  auto purges = json::parse(get(kAdmin, "/v1/purges").body).as_object();
  EXPECT_TRUE(purges["purges"].as_array().empty()) << json::serialize(purges);
  EXPECT_NE(coordinator_->log().find("audit: purge refused"), std::string::npos);
}

TEST_F(SecurityTest, AHostScopedTokenPurgesOnlyInsideItsHosts) {
  struct Case {
    std::string body;
    int status;
    std::string named;  // in the refusal
  };
  for (const auto& c : std::vector<Case>{
           {R"({"urls":["https://www.example/a?b"]})", 200, ""},
           {R"({"prefixes":["www.example/static/"]})", 200, ""},
           {R"({"hosts":["www.example"]})", 200, ""},
           {R"({"tags":["www-products"]})", 200, ""},
           {R"({"urls":["https://other.example/a"]})", 403, "other.example"},
           {R"({"urls":["https://www.example.evil/a"]})", 403, "www.example.evil"},
           {R"({"urls":["www.example/a","other.example/b"]})", 403, "other.example"},
           {R"({"prefixes":["other.example/"]})", 403, "other.example"},
           {R"({"hosts":["other.example"]})", 403, "other.example"},
           {R"({"tags":["products"]})", 403, "products"},
           {R"({"purge_everything":true})", 403, "not everything"},
       }) {
    auto r = post(kWww, c.body);
    if (c.status == 200) {
      EXPECT_TRUE(r.status == 200 || r.status == 202) << c.body << " -> " << r.status << r.body;
    } else {
      EXPECT_EQ(r.status, c.status) << c.body << " -> " << r.body;
      EXPECT_NE(r.body.find(c.named), std::string::npos) << c.body << " -> " << r.body;
    }
  }
  EXPECT_EQ(grpcPurge(kWww, "other.example/a").error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(grpcPurge(kWww, "www.example/grpc").ok());

  // PURGE at an edge goes with the caller's token: the same scopes apply,
  // and the edge's own credential is never lent to a caller.
  origin_.set("/page", {200, {{"Cache-Control", "max-age=300"}}, "page"});
  EXPECT_EQ(purgeAtEdge("www.example", "/page", "").status, 401);
  auto ok = purgeAtEdge("www.example", "/page", kWww);
  EXPECT_TRUE(ok.status == 200 || ok.status == 202) << ok.status << " " << ok.body;
  auto other = purgeAtEdge("other.example", "/page", kWww);
  EXPECT_EQ(other.status, 403) << other.body;
  EXPECT_NE(other.body.find("other.example"), std::string::npos) << other.body;
  EXPECT_EQ(purgeAtEdge("www.example", "/page", kEdge).status, 403);
  EXPECT_EQ(purgeAtEdge("www.example", "/page", "wrong-token").status, 401);
  EXPECT_EQ(origin_.count("/page"), 0) << "a PURGE never goes to the origin";
}

TEST_F(SecurityTest, AReadOnlyTokenListsButCannotPurge) {
  ASSERT_TRUE(post(kAdmin, R"({"tags":["t"]})").status < 300);
  EXPECT_EQ(get(kReader, "/v1/edges").status, 200);
  EXPECT_EQ(get(kReader, "/v1/purges").status, 200);
  EXPECT_EQ(get(kReader, "/v1/purges/1").status, 200);
  auto r = post(kReader, R"({"tags":["t"]})");
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_NE(r.body.find("'dashboard' may not purge"), std::string::npos) << r.body;
  EXPECT_EQ(grpcPurge(kReader, "www.example/a").error_code(), grpc::StatusCode::PERMISSION_DENIED);
  const std::string out = dir_.sub("ctl.out");
  EXPECT_EQ(
      runCtl(out, {"--coordinator", coordinator_->grpcAddress(), "--token", kReader, "edges"}), 0);
  EXPECT_NE(std::ifstream(out).good(), false);
  EXPECT_EQ(get("nope-nope-nope-nope", "/v1/edges").status, 401);
  // The status page and /metrics are open unless auth.protect_status.
  EXPECT_EQ(httpGet(coordinator_->httpPort(), "/metrics").status, 200);
}

TEST_F(SecurityTest, EveryPurgeCarriesItsRequester) {
  ASSERT_TRUE(post(kWww, R"({"urls":["www.example/audit"]})").status < 300);
  ASSERT_TRUE(post(kAdmin, R"({"tags":["audit"]})").status < 300);
  auto at_edge = purgeAtEdge("www.example", "/via-edge", kWww);
  ASSERT_TRUE(at_edge.status < 300) << at_edge.body;

  auto purges = json::parse(get(kReader, "/v1/purges").body).as_object()["purges"].as_array();
  ASSERT_EQ(purges.size(), 3u);
  // Newest first.
  auto by = [&](size_t i) {
    return std::string(purges[i].as_object()["requested_by"].as_string());
  };
  auto from = [&](size_t i) {
    return std::string(purges[i].as_object()["requested_from"].as_string());
  };
  EXPECT_EQ(by(2), "www-deploy");
  EXPECT_NE(from(2).find("127.0.0.1"), std::string::npos) << from(2);
  EXPECT_EQ(by(1).rfind("token:", 0), 0u) << by(1);  // a full-access token, by its digest
  EXPECT_EQ(by(0), "www-deploy");
  EXPECT_NE(from(0).find(" for 127.0.0.1"), std::string::npos)
      << "through an edge: the edge's address, then the client's: " << from(0);
  // One structured line per purge in the coordinator's log.
  const std::string log = coordinator_->log();
  bool audited = false;
  std::istringstream lines(log);
  for (std::string line; std::getline(lines, line);)
    audited |= line.find("audit: purge logged") != std::string::npos &&
               line.find(" seq=1 ") != std::string::npos &&
               line.find(" by=www-deploy") != std::string::npos;
  EXPECT_TRUE(audited) << log;
  // Kept with the log: a restarted coordinator (nothing tracked in memory)
  // still shows who asked.
  coordinator_->restart(/*kill=*/true);
  ASSERT_TRUE(coordinator_->ok());
  auto one = json::parse(get(kReader, "/v1/purges/1").body).as_object();
  EXPECT_EQ(one["requested_by"], "www-deploy") << json::serialize(one);
  auto after = json::parse(get(kReader, "/v1/purges").body).as_object()["purges"].as_array();
  ASSERT_EQ(after.size(), 3u);
  EXPECT_EQ(after[2].as_object()["requested_by"], "www-deploy");
  const std::string out = dir_.sub("ctl.out");
  EXPECT_EQ(
      runCtl(out, {"--coordinator", coordinator_->grpcAddress(), "--token", kReader, "purges"}), 0);
  EXPECT_NE(readText(out).find("www-deploy"), std::string::npos) << readText(out);
}

// An idempotency key belongs to its credential: the same key from another
// caller is another purge, and never shows the first caller's.
TEST_F(SecurityTest, IdempotencyKeysAreKeptPerCredential) {
  auto first = post(kWww, R"({"urls":["www.example/a"],"idempotency_key":"deploy-42"})");
  auto again = post(kWww, R"({"urls":["www.example/a"],"idempotency_key":"deploy-42"})");
  auto other = post(kAdmin, R"({"tags":["t"],"idempotency_key":"deploy-42"})");
  ASSERT_TRUE(first.status < 300 && again.status < 300 && other.status < 300) << other.body;
  auto id = [](const HttpResponse& r) { return json::parse(r.body).as_object()["id"].as_int64(); };
  EXPECT_EQ(id(first), id(again)) << "a retry by the same caller";
  EXPECT_NE(id(first), id(other)) << "another caller's purge with the same key";
  EXPECT_NE(other.body.find("\"tag\":\"t\""), std::string::npos) << other.body;
}

// A token with bytes that are not visible ASCII is refused at the edge
// (it would not survive as gRPC metadata), and the edge stays up.
TEST_F(SecurityTest, APurgeTokenThatIsNotVisibleAsciiIsRefusedAtTheEdge) {
  for (std::string token : {std::string("a\tb"), std::string("caf\xc3\xa9"), std::string("a b")}) {
    auto r = purgeAtEdge("www.example", "/page", token);
    EXPECT_EQ(r.status, 401) << token;
  }
  EXPECT_TRUE(ready(*edge_));
  auto ok = purgeAtEdge("www.example", "/page", kWww);
  EXPECT_TRUE(ok.status == 200 || ok.status == 202) << ok.body;
}

TEST_F(SecurityTest, SighupReloadsTheTokensFileAndKeepsEdgeStreams) {
  const std::string edge_metrics = "tern_edge_coordinator_connects_total";
  const double connects = metric(httpGet(edge_->adminPort(), "/metrics").body, edge_metrics);
  ASSERT_GE(connects, 1) << "metric " << edge_metrics;
  ASSERT_TRUE(post(kWww, R"({"urls":["www.example/1"]})").status < 300);

  // Rotate: the old token goes, a new one comes.
  std::ofstream(tokens_path_) << tokensFile("www-deploy-2", kWww2);
  coordinator_->process().signal(SIGHUP);
  ASSERT_TRUE(eventually([&] { return post(kWww, R"({"urls":["www.example/2"]})").status == 401; }))
      << coordinator_->log();
  auto r = post(kWww2, R"({"urls":["www.example/3"]})");
  EXPECT_TRUE(r.status == 200 || r.status == 202) << r.body;
  // A file that does not load, or names nobody (caught half-written),
  // leaves the credentials in force: never open.
  std::ofstream(tokens_path_) << "";
  coordinator_->process().signal(SIGHUP);
  ASSERT_TRUE(eventually([&] {
    return coordinator_->log().find("tokens file is empty") != std::string::npos;
  })) << coordinator_->log();
  EXPECT_EQ(post("nobody-at-all-0123456", R"({"urls":["www.example/x"]})").status, 401);
  EXPECT_TRUE(post(kWww2, R"({"urls":["www.example/4"]})").status < 300);
  std::ofstream(tokens_path_) << "tokens: [ {name: broken";
  coordinator_->process().signal(SIGHUP);
  ASSERT_TRUE(eventually([&] {
    return coordinator_->log().find("credentials not reloaded") != std::string::npos;
  })) << coordinator_->log();
  EXPECT_TRUE(post(kWww2, R"({"urls":["www.example/4"]})").status < 300);

  // The edge's stream was never dropped, and it still applies purges.
  auto done = post(kAdmin, R"({"urls":["www.example/5"],"wait":"all"})");
  ASSERT_EQ(done.status, 200) << done.body;
  EXPECT_NE(done.body.find("\"complete\""), std::string::npos) << done.body;
  EXPECT_EQ(metric(httpGet(edge_->adminPort(), "/metrics").body, edge_metrics), connects);
  EXPECT_TRUE(ready(*edge_));
}

// ---- TLS on every hop; mTLS: the edge's certificate is its identity ----

class MutualTlsTest : public ::testing::Test {
 protected:
  // A CA, and a certificate it signs (EC keys: quick to make).
  bool makeCa(const std::string& name) {
    return sh(
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 "
        "-subj /CN=" +
        name + " -keyout " + p(name + ".key") + " -out " + p(name + ".pem"));
  }
  bool makeCert(const std::string& name, const std::string& cn, const std::string& ca,
                const std::string& san) {
    std::ofstream(p(name + ".ext")) << "subjectAltName=" << san << "\n";
    return sh("openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=" +
              cn + " -keyout " + p(name + ".key") + " -out " + p(name + ".csr")) &&
           sh("openssl x509 -req -days 1 -in " + p(name + ".csr") + " -CA " + p(ca + ".pem") +
              " -CAkey " + p(ca + ".key") + " -CAcreateserial -extfile " + p(name + ".ext") +
              " -out " + p(name + ".pem"));
  }
  std::string p(const std::string& f) { return dir_.sub(f); }
  static bool sh(const std::string& cmd) {
    return std::system((cmd + " 2>/dev/null").c_str()) == 0;
  }

  std::unique_ptr<EdgeProcess> startEdge(const std::string& id, const std::string& cert,
                                         const std::string& token = "") {
    std::vector<std::string> flags = {"--coordinator.address", coordinator_->grpcAddress(),
                                      "--coordinator.edge_id", id,
                                      "--coordinator.tls",     "true",
                                      "--coordinator.ca_file", p("ca1.pem"),
                                      "--log.access",          "false"};
    if (!cert.empty()) {
      flags.insert(flags.end(),
                   {"--coordinator.cert", p(cert + ".pem"), "--coordinator.key", p(cert + ".key")});
    }
    if (!token.empty()) flags.insert(flags.end(), {"--coordinator.token", token});
    return std::make_unique<EdgeProcess>(dir_.sub("cache-" + id), origin_.url(), flags);
  }

  TempDir dir_;
  TestOrigin origin_;
  std::unique_ptr<CoordinatorProcess> coordinator_;
};

TEST_F(MutualTlsTest, AnEdgeIsItsCertificate) {
  ASSERT_TRUE(makeCa("ca1") && makeCa("ca2"));
  ASSERT_TRUE(makeCert("server", "coordinator", "ca1", "IP:127.0.0.1"));
  ASSERT_TRUE(makeCert("edge-1", "edge-1", "ca1", "DNS:edge-1"));
  ASSERT_TRUE(makeCert("stranger", "edge-3", "ca2", "DNS:edge-3"));
  coordinator_ = std::make_unique<CoordinatorProcess>(
      dir_.sub("coordinator"),
      std::vector<std::string>{"--lease", "1s", "--auth.token", kAdmin, "--grpc_tls.cert",
                               p("server.pem"), "--grpc_tls.key", p("server.key"),
                               "--grpc_tls.client_ca", p("ca1.pem"), "--http_tls.cert",
                               p("server.pem"), "--http_tls.key", p("server.key")});
  ASSERT_TRUE(coordinator_->ok()) << coordinator_->log();
  // Every hop is TLS: the HTTP API too, verified against the CA by curl;
  // plain HTTP on that port gets no answer.
  const std::string https = "https://127.0.0.1:" + std::to_string(coordinator_->httpPort());
  EXPECT_TRUE(sh("curl -sf --max-time 10 --cacert " + p("ca1.pem") + " " + https + "/healthz"));
  EXPECT_TRUE(sh("curl -sf --max-time 10 --cacert " + p("ca1.pem") + " -H 'Authorization: Bearer " +
                 kAdmin + "' " + https + "/v1/edges"));
  EXPECT_FALSE(sh("curl -sf --max-time 10 --cacert " + p("ca2.pem") + " " + https + "/healthz"))
      << "a client that trusts another CA refuses the coordinator";
  EXPECT_NE(httpGet(coordinator_->httpPort(), "/healthz").status, 200);

  auto edge1 = startEdge("edge-1", "edge-1");
  ASSERT_TRUE(edge1->ok()) << edge1->log();
  ASSERT_TRUE(eventually([&] { return ready(*edge1); })) << edge1->log() << coordinator_->log();

  // edge-1's certificate cannot join as edge-2.
  auto edge2 = startEdge("edge-2", "edge-1");
  ASSERT_TRUE(edge2->ok());
  ASSERT_TRUE(eventually([&] {
    return coordinator_->log().find("'cert:edge-1' may not join as edge 'edge-2'") !=
           std::string::npos;
  })) << coordinator_->log();
  // A certificate of another CA fails the handshake; a token (even one with
  // every scope) does not stand in for a certificate.
  auto stranger = startEdge("edge-3", "stranger");
  auto token_only = startEdge("edge-4", "", kAdmin);
  ASSERT_TRUE(stranger->ok() && token_only->ok());
  ASSERT_TRUE(eventually([&] {
    return coordinator_->log().find("needs a client certificate") != std::string::npos ||
           coordinator_->log().find("no client certificate") != std::string::npos;
  })) << coordinator_->log();
  // The stranger's handshakes fail (the coordinator's TLS says why), attempt
  // after attempt, and it never connects.
  ASSERT_TRUE(eventually([&] {
    const std::string log = coordinator_->log();
    const size_t first = log.find("certificate verify failed");
    return first != std::string::npos &&
           log.find("certificate verify failed", first + 1) != std::string::npos;
  })) << coordinator_->log();
  ASSERT_TRUE(eventually([&] {
    return metric(httpGet(stranger->adminPort(), "/metrics").body,
                  "tern_edge_coordinator_connects_total") == 0;
  })) << stranger->log()
      << "\n-- coordinator --\n"
      << coordinator_->log();
  EXPECT_EQ(httpGet(edge2->adminPort(), "/readyz").status, 503);
  EXPECT_EQ(httpGet(stranger->adminPort(), "/readyz").status, 503);
  EXPECT_EQ(httpGet(token_only->adminPort(), "/readyz").status, 503);

  // Operators go on with a bearer token and no client certificate, and
  // the purge reaches edge-1, the only edge that joined.
  const std::string out = dir_.sub("ctl.out");
  EXPECT_EQ(
      runCtl(out, {"--coordinator", coordinator_->grpcAddress(), "--tls", "--ca-file", p("ca1.pem"),
                   "--token", kAdmin, "--json", "purge", "--tag", "t", "--wait"}),
      0)
      << readText(out);
  auto j = json::parse(readText(out)).as_object();
  EXPECT_EQ(j["state"], "complete");
  ASSERT_EQ(j["edges"].as_array().size(), 1u) << readText(out);
  EXPECT_EQ(j["edges"].as_array()[0].as_object()["edge_id"], "edge-1");
}

}  // namespace
}  // namespace tern::testing
