// ternctl: the operators' command line for a Tern cluster (gRPC client of
// tern.v1.PurgeService).
//
//   ternctl [global options] purge (--url U | --prefix P | --host H | --tag T | --all)...
//                                  [--soft] [--wait] [--timeout 10s] [--idempotency-key K]
//   ternctl [global options] purges [ID]
//   ternctl [global options] edges [--watch [--interval 2s]]
//   ternctl [global options] watch [--from SEQ]   purges as they complete
//   ternctl completion bash        a bash completion script
//   ternctl hash-token             the SHA-256 of a token read from stdin, for
//                                  auth.tokens_file (the file keeps no token)
//
// Exit codes (stable, for scripts):
//   0 done (purge complete, or accepted when not waiting)
//   1 other error            2 usage error
//   3 purge timed out with edges pending (it is logged and will still apply)
//   4 authentication failed  5 coordinator unreachable
//   6 request rejected as invalid   7 rate limited (retry later)
//   8 not found

#include <grpcpp/grpcpp.h>
#include <openssl/sha.h>

#include <boost/program_options.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iostream>
#include <thread>

#include "coordinator/api/json.h"
#include "tern/v1/purge.grpc.pb.h"

namespace po = boost::program_options;
namespace v1 = tern::v1;
using tern::coordinator::edgePurgeStateName;
using tern::coordinator::edgeStateName;
using tern::coordinator::purgeStateName;
using tern::coordinator::selectorText;

namespace {

enum Exit {
  kOk = 0,
  kError = 1,
  kUsage = 2,
  kTimeout = 3,
  kAuth = 4,
  kUnreachable = 5,
  kInvalid = 6,
  kRateLimited = 7,
  kNotFound = 8,
};

int exitFor(const grpc::Status& s) {
  switch (s.error_code()) {
    case grpc::StatusCode::UNAUTHENTICATED:
    case grpc::StatusCode::PERMISSION_DENIED:
      return kAuth;
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return kUnreachable;
    case grpc::StatusCode::INVALID_ARGUMENT:
      return kInvalid;
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return kRateLimited;
    case grpc::StatusCode::NOT_FOUND:
      return kNotFound;
    default:
      return kError;
  }
}

int failed(const grpc::Status& s, bool as_json) {
  if (as_json) {
    std::cout << tern::coordinator::errorJson("grpc_" + std::to_string(s.error_code()),
                                              s.error_message());
  } else {
    std::cerr << "ternctl: " << s.error_message() << " (gRPC code " << s.error_code() << ")\n";
  }
  return exitFor(s);
}

bool parseDurationMs(const std::string& text, uint32_t* out) {
  char* end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  std::string unit(end ? end : "");
  double ms;
  if (unit == "ms")
    ms = v;
  else if (unit == "s" || unit.empty())
    ms = v * 1000;
  else if (unit == "m")
    ms = v * 60000;
  else
    return false;
  if (ms < 0 || ms > 3'600'000) return false;
  *out = static_cast<uint32_t>(ms);
  return true;
}

void printPurge(const v1::PurgeResult& r) {
  std::printf("purge %llu: %s (%s", static_cast<unsigned long long>(r.seq()),
              std::string(purgeStateName(r.state())).c_str(),
              r.mode() == v1::PURGE_MODE_SOFT ? "soft" : "hard");
  if (r.state() == v1::PURGE_STATE_COMPLETE)
    std::printf(", %.2f ms", static_cast<double>(r.complete_latency_us()) / 1000);
  std::printf(")\n");
  if (!r.requested_by().empty())
    std::printf("  requested by %s from %s\n", r.requested_by().c_str(),
                r.requested_from().c_str());
  for (int i = 0; i < r.selectors_size(); ++i) {
    if (i == 10) {
      std::printf("  ... %d selectors in all\n", r.selectors_size());
      break;
    }
    std::printf("  %s\n", selectorText(r.selectors(i)).c_str());
  }
  for (const auto& e : r.edges()) {
    std::printf("  edge %-24s %-8s", e.edge_id().c_str(),
                std::string(edgePurgeStateName(e.state())).c_str());
    if (e.state() == v1::EDGE_PURGE_STATE_APPLIED)
      std::printf(" %.2f ms", static_cast<double>(e.apply_latency_us()) / 1000);
    std::printf("\n");
  }
}

// One purge on one line (purges, watch).
void printPurgeLine(const v1::PurgeResult& r) {
  std::string sel = r.selectors_size() ? selectorText(r.selectors(0)) : "";
  if (r.selectors_size() > 1) sel += " (+" + std::to_string(r.selectors_size() - 1) + ")";
  char lat[32] = "-";
  if (r.state() == v1::PURGE_STATE_COMPLETE)
    std::snprintf(lat, sizeof lat, "%.2fms", static_cast<double>(r.complete_latency_us()) / 1000);
  std::printf("%-8llu %-9s %-5s %10s  %-20s %s\n", static_cast<unsigned long long>(r.seq()),
              std::string(purgeStateName(r.state())).c_str(),
              r.mode() == v1::PURGE_MODE_SOFT ? "soft" : "hard", lat,
              r.requested_by().empty() ? "-" : r.requested_by().c_str(), sel.c_str());
}

void printEdges(const v1::ListEdgesResponse& resp) {
  std::printf("log head %llu\n", static_cast<unsigned long long>(resp.head_seq()));
  std::printf("%-24s %-22s %-12s %8s %6s %s\n", "EDGE", "ADDRESS", "STATE", "APPLIED", "LAG",
              "REPLICA");
  for (const auto& e : resp.edges())
    std::printf("%-24s %-22s %-12s %8llu %6llu %s\n", e.edge_id().c_str(), e.address().c_str(),
                std::string(edgeStateName(e.state())).c_str(),
                static_cast<unsigned long long>(e.applied_seq()),
                static_cast<unsigned long long>(e.lag()), e.replica_id().c_str());
  if (resp.replicas_size() > 0) {
    std::printf("\n%-24s %-22s %8s %10s\n", "REPLICA", "ADDRESS", "EDGES", "HEAD SEEN");
    for (const auto& r : resp.replicas())
      std::printf("%-24s %-22s %8u %10llu%s\n", r.replica_id().c_str(), r.address().c_str(),
                  r.edges_connected(), static_cast<unsigned long long>(r.head_seq()),
                  r.self() ? "  (answering)" : "");
  }
  if (resp.etcd_members_size() > 0) {
    std::printf("\n%-24s %-12s %-9s %-8s %10s %s\n", "ETCD MEMBER", "STATE", "ROLE", "VERSION",
                "RAFT INDEX", "ERROR");
    for (const auto& m : resp.etcd_members())
      std::printf("%-24s %-12s %-9s %-8s %10llu %s\n", m.endpoint().c_str(),
                  m.reachable() ? "reachable" : "unreachable",
                  m.leader()      ? "leader"
                  : m.reachable() ? "follower"
                                  : "-",
                  m.version().c_str(), static_cast<unsigned long long>(m.raft_index()),
                  m.error().c_str());
  }
}

// UTC wall time, for the snapshots of edges --watch.
std::string nowText() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// `ternctl completion bash`; install with
//   ternctl completion bash > /etc/bash_completion.d/ternctl
constexpr const char* kBashCompletion = R"(# bash completion for ternctl
_ternctl() {
  local cur prev words cword
  _init_completion 2>/dev/null || { cur="${COMP_WORDS[COMP_CWORD]}"; prev="${COMP_WORDS[COMP_CWORD-1]}"; }
  local commands="purge purges edges watch hash-token completion"
  local global="--coordinator --token --tls --ca-file --json --deadline --help"
  local cmd="" w
  for w in "${COMP_WORDS[@]:1:COMP_CWORD-1}"; do
    case " $commands " in *" $w "*) cmd="$w"; break;; esac
  done
  case "$prev" in
    --ca-file) COMPREPLY=($(compgen -f -- "$cur")); return;;
    --coordinator|--token|--deadline|--timeout|--interval|--from|--url|--prefix|--host|--tag|--idempotency-key) return;;
  esac
  case "$cmd" in
    "") COMPREPLY=($(compgen -W "$commands $global" -- "$cur"));;
    purge) COMPREPLY=($(compgen -W "--url --prefix --host --tag --all --soft --wait --timeout --idempotency-key $global" -- "$cur"));;
    edges) COMPREPLY=($(compgen -W "--watch --interval $global" -- "$cur"));;
    watch) COMPREPLY=($(compgen -W "--from $global" -- "$cur"));;
    completion) COMPREPLY=($(compgen -W "bash" -- "$cur"));;
    *) COMPREPLY=($(compgen -W "$global" -- "$cur"));;
  esac
}
complete -F _ternctl ternctl
)";

}  // namespace

int main(int argc, char** argv) {
  po::options_description global("Global options");
  global.add_options()("help,h", "show this help")(
      "coordinator,c", po::value<std::string>()->default_value(""),
      "coordinator gRPC address host:port (env TERN_COORDINATOR, default 127.0.0.1:8471)")(
      "token", po::value<std::string>()->default_value(""), "bearer token (env TERN_TOKEN)")(
      "tls", po::bool_switch(), "TLS to the coordinator")(
      "ca-file", po::value<std::string>()->default_value(""), "PEM roots for --tls")(
      "json", po::bool_switch(), "JSON output for scripts")(
      "deadline", po::value<std::string>()->default_value("150s"),
      "give up on the call after this");
  po::options_description purge("purge options");
  purge.add_options()("url", po::value<std::vector<std::string>>()->composing(),
                      "purge a URL (every variant)")(
      "prefix", po::value<std::vector<std::string>>()->composing(),
      "purge every URL starting with host/path")(
      "host", po::value<std::vector<std::string>>()->composing(), "purge a host")(
      "tag", po::value<std::vector<std::string>>()->composing(), "purge a surrogate key")(
      "all", po::bool_switch(), "purge everything")("soft", po::bool_switch(),
                                                    "mark stale (revalidate) instead of removing")(
      "wait", po::bool_switch(), "wait until every edge applied it (or is fenced)")(
      "timeout", po::value<std::string>()->default_value("10s"), "longest wait with --wait")(
      "idempotency-key", po::value<std::string>()->default_value(""), "retry-safe key");
  po::options_description follow("watch and edges options");
  follow.add_options()("from", po::value<uint64_t>()->default_value(0),
                       "watch: start with the purges from this sequence number (0: new ones)")(
      "watch,w", po::bool_switch(), "edges: list again every --interval until interrupted")(
      "interval", po::value<std::string>()->default_value("2s"), "edges --watch: how often");
  po::options_description hidden;
  hidden.add_options()("command", po::value<std::string>())("arg", po::value<std::string>());
  po::positional_options_description pos;
  pos.add("command", 1).add("arg", 1);
  po::options_description all;
  all.add(global).add(purge).add(follow).add(hidden);

  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(all).positional(pos).run(), vm);
    po::notify(vm);
  } catch (const std::exception& e) {
    std::cerr << "ternctl: " << e.what() << "\n";
    return kUsage;
  }
  if (vm.count("help") || !vm.count("command")) {
    std::cout << "usage: ternctl [options] purge|purges [ID]|edges|hash-token\n\n"
              << global << "\n"
              << purge;
    std::cout << "\nexit codes: 0 ok, 1 error, 2 usage, 3 timeout (edges pending), 4 auth, "
                 "5 unreachable, 6 invalid request, 7 rate limited, 8 not found\n";
    return vm.count("help") ? kOk : kUsage;
  }
  if (vm["command"].as<std::string>() == "completion") {
    if (!vm.count("arg") || vm["arg"].as<std::string>() != "bash") {
      std::cerr << "ternctl: completion bash (the only shell so far)\n";
      return kUsage;
    }
    std::cout << kBashCompletion;
    return kOk;
  }
  if (vm["command"].as<std::string>() == "hash-token") {
    std::string token;
    std::getline(std::cin, token);
    while (!token.empty() && (token.back() == '\r' || token.back() == ' ')) token.pop_back();
    if (token.empty()) {
      std::cerr << "ternctl: hash-token reads the token from stdin\n";
      return kUsage;
    }
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), md);
    for (unsigned char c : md) std::printf("%02x", c);
    std::printf("\n");
    return kOk;
  }
  std::string address = vm["coordinator"].as<std::string>();
  if (address.empty() && std::getenv("TERN_COORDINATOR")) address = std::getenv("TERN_COORDINATOR");
  if (address.empty()) address = "127.0.0.1:8471";
  std::string token = vm["token"].as<std::string>();
  if (token.empty() && std::getenv("TERN_TOKEN")) token = std::getenv("TERN_TOKEN");
  const bool as_json = vm["json"].as<bool>();
  uint32_t deadline_ms = 0;
  if (!parseDurationMs(vm["deadline"].as<std::string>(), &deadline_ms)) {
    std::cerr << "ternctl: bad --deadline\n";
    return kUsage;
  }

  std::shared_ptr<grpc::ChannelCredentials> creds = grpc::InsecureChannelCredentials();
  if (vm["tls"].as<bool>()) {
    grpc::SslCredentialsOptions so;
    if (const auto& ca = vm["ca-file"].as<std::string>(); !ca.empty()) {
      std::ifstream in(ca);
      so.pem_root_certs.assign(std::istreambuf_iterator<char>(in), {});
    }
    creds = grpc::SslCredentials(so);
  }
  auto stub = v1::PurgeService::NewStub(grpc::CreateChannel(address, creds));
  const bool explicit_deadline = !vm["deadline"].defaulted();
  auto context = [&](grpc::ClientContext* ctx, bool stream = false) {
    if (!token.empty()) ctx->AddMetadata("authorization", "Bearer " + token);
    // A stream runs until interrupted, unless asked otherwise.
    if (!stream || explicit_deadline)
      ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(deadline_ms));
  };

  const std::string command = vm["command"].as<std::string>();
  if (command == "purge") {
    v1::PurgeRequest req;
    auto add = [&](const char* name, auto set) {
      if (!vm.count(name)) return;
      for (const auto& v : vm[name].as<std::vector<std::string>>()) set(req.add_selectors(), v);
    };
    add("url", [](v1::Selector* s, const std::string& v) { s->set_url(v); });
    add("prefix", [](v1::Selector* s, const std::string& v) { s->set_prefix(v); });
    add("host", [](v1::Selector* s, const std::string& v) { s->set_host(v); });
    add("tag", [](v1::Selector* s, const std::string& v) { s->set_tag(v); });
    if (vm["all"].as<bool>()) req.add_selectors()->set_all(true);
    if (req.selectors().empty()) {
      std::cerr << "ternctl: purge needs --url, --prefix, --host, --tag or --all\n";
      return kUsage;
    }
    req.set_mode(vm["soft"].as<bool>() ? v1::PURGE_MODE_SOFT : v1::PURGE_MODE_HARD);
    req.set_wait(vm["wait"].as<bool>() ? v1::WAIT_MODE_ALL : v1::WAIT_MODE_NONE);
    uint32_t timeout = 0;
    if (!parseDurationMs(vm["timeout"].as<std::string>(), &timeout)) {
      std::cerr << "ternctl: bad --timeout\n";
      return kUsage;
    }
    req.set_timeout_ms(timeout);
    req.set_idempotency_key(vm["idempotency-key"].as<std::string>());
    grpc::ClientContext ctx;
    context(&ctx);
    v1::PurgeResult result;
    grpc::Status s = stub->Purge(&ctx, req, &result);
    if (!s.ok()) return failed(s, as_json);
    if (as_json)
      std::cout << tern::coordinator::purgeResultJson(result);
    else
      printPurge(result);
    if (req.wait() == v1::WAIT_MODE_ALL && result.state() != v1::PURGE_STATE_COMPLETE)
      return kTimeout;
    return kOk;
  }
  if (command == "purges") {
    grpc::ClientContext ctx;
    context(&ctx);
    if (vm.count("arg")) {
      char* end = nullptr;
      const std::string& arg = vm["arg"].as<std::string>();
      unsigned long long seq = std::strtoull(arg.c_str(), &end, 10);
      if (arg.empty() || *end != '\0' || seq == 0) {
        std::cerr << "ternctl: purge id must be a positive integer\n";
        return kUsage;
      }
      v1::GetPurgeRequest req;
      req.set_seq(seq);
      v1::PurgeResult r;
      grpc::Status s = stub->GetPurge(&ctx, req, &r);
      if (!s.ok()) return failed(s, as_json);
      if (as_json)
        std::cout << tern::coordinator::purgeResultJson(r);
      else
        printPurge(r);
      return kOk;
    }
    v1::ListPurgesRequest req;
    req.set_limit(50);
    v1::ListPurgesResponse resp;
    grpc::Status s = stub->ListPurges(&ctx, req, &resp);
    if (!s.ok()) return failed(s, as_json);
    if (as_json) {
      std::cout << tern::coordinator::purgesJson({resp.purges().begin(), resp.purges().end()});
      return kOk;
    }
    std::printf("%-8s %-9s %-5s %10s  %-20s %s\n", "ID", "STATE", "MODE", "LATENCY", "BY",
                "SELECTORS");
    for (const auto& r : resp.purges()) printPurgeLine(r);
    return kOk;
  }
  if (command == "edges") {
    uint32_t interval_ms = 0;
    if (!parseDurationMs(vm["interval"].as<std::string>(), &interval_ms) || interval_ms < 100) {
      std::cerr << "ternctl: bad --interval (at least 100ms)\n";
      return kUsage;
    }
    for (bool first = true;; first = false) {
      if (!first) std::this_thread::sleep_for(std::chrono::milliseconds(interval_ms));
      grpc::ClientContext ctx;
      context(&ctx);
      v1::ListEdgesResponse resp;
      grpc::Status s = stub->ListEdges(&ctx, v1::ListEdgesRequest(), &resp);
      if (!vm["watch"].as<bool>()) {
        if (!s.ok()) return failed(s, as_json);
        if (as_json)
          std::cout << tern::coordinator::edgesJson(resp);
        else
          printEdges(resp);
        return kOk;
      }
      // Watching: one snapshot per interval, errors included (an outage
      // is what the operator is watching for); only auth errors end it.
      if (!s.ok()) {
        if (exitFor(s) == kAuth) return failed(s, as_json);
        if (as_json) {
          std::cout << tern::coordinator::errorJson("grpc_" + std::to_string(s.error_code()),
                                                    s.error_message());
        } else {
          std::printf("%s  %s (gRPC code %d)\n\n", nowText().c_str(), s.error_message().c_str(),
                      static_cast<int>(s.error_code()));
        }
      } else if (as_json) {
        std::cout << tern::coordinator::edgesJson(resp);  // one object per line
      } else {
        std::printf("%s\n", nowText().c_str());
        printEdges(resp);
        std::printf("\n");
      }
      std::fflush(stdout);
    }
  }
  if (command == "watch") {
    grpc::ClientContext ctx;
    context(&ctx, /*stream=*/true);
    v1::WatchPurgesRequest req;
    req.set_from_seq(vm["from"].as<uint64_t>());
    auto reader = stub->WatchPurges(&ctx, req);
    v1::PurgeResult r;
    if (!as_json)
      std::printf("%-8s %-9s %-5s %10s  %-20s %s\n", "ID", "STATE", "MODE", "LATENCY", "BY",
                  "SELECTORS");
    std::fflush(stdout);
    while (reader->Read(&r)) {
      if (as_json)
        std::cout << tern::coordinator::purgeResultJson(r);  // one object per line
      else
        printPurgeLine(r);
      std::cout.flush();
      std::fflush(stdout);
    }
    grpc::Status s = reader->Finish();
    if (!s.ok()) return failed(s, as_json);
    return kOk;
  }
  std::cerr << "ternctl: unknown command '" << command
            << "' (purge, purges, edges, watch, hash-token, completion)\n";
  return kUsage;
}
