#pragma once
// RawH2: an HTTP/2 client that writes frames byte by byte, for tests that
// attack a running edge with what no well-behaved client sends (floods,
// rapid reset, HPACK bombs, endless CONTINUATION, zero windows). Frames are
// built here (RFC 9113 section 4, HPACK literals per RFC 7541 section 6);
// response header blocks are decoded with nghttp2's HPACK inflater.
// Loopback only.
//
// Thread-safety: one thread.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tern::testing {

namespace h2 {
constexpr uint8_t kData = 0, kHeaders = 1, kRstStream = 3, kSettings = 4, kPing = 6, kGoaway = 7,
                  kWindowUpdate = 8, kContinuation = 9;
constexpr uint8_t kEndStream = 0x1, kEndHeaders = 0x4, kAck = 0x1;
constexpr uint32_t kNoError = 0, kRefusedStream = 7, kCancel = 8, kEnhanceYourCalm = 0xb;

std::string frame(uint8_t type, uint8_t flags, uint32_t stream, std::string_view payload);
// HPACK: an integer with an N-bit prefix, a literal field (never indexed,
// or with incremental indexing), and an indexed field.
std::string hpackInt(uint32_t value, int prefix_bits, uint8_t first_byte);
std::string literal(std::string_view name, std::string_view value, bool index = false);
std::string indexed(uint32_t index);
// The header block of a GET of `path` at authority "test".
std::string getBlock(std::string_view path);
std::string settings(std::vector<std::pair<uint16_t, uint32_t>> entries);
}  // namespace h2

class RawH2 {
 public:
  // Connects to 127.0.0.1:port and sends the preface and a SETTINGS frame
  // with `settings`.
  explicit RawH2(int port, std::vector<std::pair<uint16_t, uint32_t>> settings = {});
  ~RawH2();
  RawH2(const RawH2&) = delete;
  RawH2& operator=(const RawH2&) = delete;

  bool connected() const { return fd_ >= 0; }
  // Writes all of `bytes` within `timeout_ms`; false if the peer closed or
  // the time ran out.
  bool send(std::string_view bytes, int timeout_ms = 5000);

  struct Frame {
    uint8_t type = 0, flags = 0;
    uint32_t stream = 0;
    std::string payload;
    std::vector<std::pair<std::string, std::string>> headers;  // decoded, HEADERS only
  };
  // The next frame; nullopt when the connection closed or nothing came
  // within `timeout_ms` (closed() tells which).
  std::optional<Frame> read(int timeout_ms = 5000);
  bool closed() const { return eof_; }
  // Reads until the peer closes (true) or `timeout_ms` passes (false);
  // remembers the GOAWAY error code seen on the way.
  bool waitClosed(int timeout_ms);
  std::optional<uint32_t> goawayCode() const { return goaway_; }
  // Reads the server's SETTINGS and acknowledges them.
  bool handshake(int timeout_ms = 5000);

 private:
  bool fill(size_t n, int timeout_ms);
  int fd_ = -1;
  std::string in_;
  bool eof_ = false;
  std::optional<uint32_t> goaway_;
  void* inflater_ = nullptr;
};

// The resident set of a process, in KiB (0 if unknown).
long residentKiB(int pid);

}  // namespace tern::testing
