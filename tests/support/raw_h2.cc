#include "tests/support/raw_h2.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>

namespace tern::testing {

namespace h2 {

std::string frame(uint8_t type, uint8_t flags, uint32_t stream, std::string_view payload) {
  std::string out;
  out.reserve(9 + payload.size());
  const uint32_t len = static_cast<uint32_t>(payload.size());
  out.push_back(static_cast<char>((len >> 16) & 0xff));
  out.push_back(static_cast<char>((len >> 8) & 0xff));
  out.push_back(static_cast<char>(len & 0xff));
  out.push_back(static_cast<char>(type));
  out.push_back(static_cast<char>(flags));
  for (int shift = 24; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>(((stream & 0x7fffffff) >> shift) & 0xff));
  out.append(payload);
  return out;
}

std::string hpackInt(uint32_t value, int prefix_bits, uint8_t first_byte) {
  std::string out;
  const uint32_t max = (1u << prefix_bits) - 1;
  if (value < max) {
    out.push_back(static_cast<char>(first_byte | value));
    return out;
  }
  out.push_back(static_cast<char>(first_byte | max));
  value -= max;
  while (value >= 128) {
    out.push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
  return out;
}

namespace {
std::string str(std::string_view s) {
  return hpackInt(static_cast<uint32_t>(s.size()), 7, 0x00) + std::string(s);
}
}  // namespace

std::string literal(std::string_view name, std::string_view value, bool index) {
  return std::string(1, index ? '\x40' : '\x10') + str(name) + str(value);
}

std::string indexed(uint32_t index) { return hpackInt(index, 7, 0x80); }

std::string getBlock(std::string_view path) {
  return literal(":method", "GET") + literal(":scheme", "http") + literal(":path", path) +
         literal(":authority", "test");
}

std::string settings(std::vector<std::pair<uint16_t, uint32_t>> entries) {
  std::string payload;
  for (auto [id, value] : entries) {
    payload.push_back(static_cast<char>(id >> 8));
    payload.push_back(static_cast<char>(id & 0xff));
    for (int shift = 24; shift >= 0; shift -= 8)
      payload.push_back(static_cast<char>((value >> shift) & 0xff));
  }
  return frame(kSettings, 0, 0, payload);
}

}  // namespace h2

RawH2::RawH2(int port, std::vector<std::pair<uint16_t, uint32_t>> settings) {
  nghttp2_hd_inflater* inflater = nullptr;
  nghttp2_hd_inflate_new(&inflater);
  inflater_ = inflater;
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return;
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  fd_ = fd;
  send("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + h2::settings(std::move(settings)));
}

RawH2::~RawH2() {
  if (fd_ >= 0) ::close(fd_);
  nghttp2_hd_inflate_del(static_cast<nghttp2_hd_inflater*>(inflater_));
}

namespace {
int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
}  // namespace

bool RawH2::send(std::string_view bytes, int timeout_ms) {
  if (fd_ < 0) return false;
  const int64_t deadline = nowMs() + timeout_ms;
  while (!bytes.empty()) {
    ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n > 0) {
      bytes.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return false;
    const int64_t left = deadline - nowMs();
    if (left <= 0) return false;
    pollfd p{fd_, POLLOUT, 0};
    ::poll(&p, 1, static_cast<int>(left));
    if (p.revents & (POLLERR | POLLHUP)) return false;
  }
  return true;
}

bool RawH2::fill(size_t n, int timeout_ms) {
  const int64_t deadline = nowMs() + timeout_ms;
  char buf[65536];
  while (in_.size() < n) {
    if (fd_ < 0 || eof_) return false;
    ssize_t got = ::recv(fd_, buf, sizeof buf, 0);
    if (got > 0) {
      in_.append(buf, static_cast<size_t>(got));
      continue;
    }
    if (got == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
      eof_ = true;
      return false;
    }
    const int64_t left = deadline - nowMs();
    if (left <= 0) return false;
    pollfd p{fd_, POLLIN, 0};
    ::poll(&p, 1, static_cast<int>(left));
  }
  return true;
}

std::optional<RawH2::Frame> RawH2::read(int timeout_ms) {
  if (!fill(9, timeout_ms)) return std::nullopt;
  const auto* b = reinterpret_cast<const uint8_t*>(in_.data());
  const size_t len = (size_t{b[0]} << 16) | (size_t{b[1]} << 8) | b[2];
  if (!fill(9 + len, timeout_ms)) return std::nullopt;
  b = reinterpret_cast<const uint8_t*>(in_.data());
  Frame f;
  f.type = b[3];
  f.flags = b[4];
  f.stream =
      ((uint32_t{b[5]} << 24) | (uint32_t{b[6]} << 16) | (uint32_t{b[7]} << 8) | b[8]) & 0x7fffffff;
  f.payload = in_.substr(9, len);
  in_.erase(0, 9 + len);
  if (f.type == h2::kGoaway && f.payload.size() >= 8) {
    const auto* p = reinterpret_cast<const uint8_t*>(f.payload.data());
    goaway_ = (uint32_t{p[4]} << 24) | (uint32_t{p[5]} << 16) | (uint32_t{p[6]} << 8) | p[7];
  }
  if (f.type == h2::kHeaders) {
    // Our SETTINGS never ask for padding or priority: the block is the payload.
    auto* inflater = static_cast<nghttp2_hd_inflater*>(inflater_);
    auto* in = reinterpret_cast<uint8_t*>(f.payload.data());
    size_t left = f.payload.size();
    for (;;) {
      nghttp2_nv nv;
      int flags = 0;
      ssize_t used = nghttp2_hd_inflate_hd2(inflater, &nv, &flags, in, left, 1);
      if (used < 0) break;
      in += used;
      left -= static_cast<size_t>(used);
      if (flags & NGHTTP2_HD_INFLATE_EMIT)
        f.headers.emplace_back(std::string(reinterpret_cast<char*>(nv.name), nv.namelen),
                               std::string(reinterpret_cast<char*>(nv.value), nv.valuelen));
      if (flags & NGHTTP2_HD_INFLATE_FINAL) {
        nghttp2_hd_inflate_end_headers(inflater);
        break;
      }
      if (used == 0 && left == 0) break;
    }
  }
  return f;
}

bool RawH2::waitClosed(int timeout_ms) {
  const int64_t deadline = nowMs() + timeout_ms;
  while (!eof_) {
    const int64_t left = deadline - nowMs();
    if (left <= 0) return false;
    read(static_cast<int>(left));
  }
  return true;
}

bool RawH2::handshake(int timeout_ms) {
  const int64_t deadline = nowMs() + timeout_ms;
  while (nowMs() < deadline) {
    auto f = read(static_cast<int>(std::max<int64_t>(1, deadline - nowMs())));
    if (!f) return false;
    if (f->type == h2::kSettings && !(f->flags & h2::kAck))
      return send(h2::frame(h2::kSettings, h2::kAck, 0, {}));
  }
  return false;
}

long residentKiB(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  }
  return 0;
}

}  // namespace tern::testing
