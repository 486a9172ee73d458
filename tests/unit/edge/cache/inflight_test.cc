// Inflight: what a shared origin response keeps in memory, and when it holds
// the fetcher back.

#include "edge/cache/inflight.h"

#include <gtest/gtest.h>

#include "edge/cache/collapser.h"

namespace tern::edge::cache {
namespace {

constexpr uint64_t kChunk = 64 * 1024;

std::string chunk() { return std::string(kChunk, 'x'); }

// Appends until the fetcher is told to wait (or `max` chunks); returns how
// many were appended. `resumed` is set when the fetcher may read again.
int fill(Inflight& f, int max, bool* resumed) {
  for (int i = 0; i < max; ++i) {
    f.append(chunk());
    if (!f.mayReadMore([resumed] { *resumed = true; })) return i + 1;
  }
  return max;
}

// A subscriber that asks for every_bytes is woken once that much body has
// come since its last wake-up, and at the end; one that does not, at every
// change.
TEST(InflightTest, ASubscriberIsWokenPerPieceItAskedFor) {
  auto f = std::make_shared<Inflight>();
  int every_change = 0, per_piece = 0;
  auto now = [](std::function<void()> fn) { fn(); };
  f->subscribe(now, [&] { ++every_change; });
  f->subscribe(
      now, [&] { ++per_piece; }, 40000);
  f->setHead({});
  EXPECT_EQ(every_change, 1);
  EXPECT_EQ(per_piece, 0) << "the head is no body";
  for (int i = 0; i < 5; ++i) f->append(std::string(16384, 'x'));  // 16, 32, 48, 64, 80 KiB
  EXPECT_EQ(every_change, 6);
  EXPECT_EQ(per_piece, 1) << "at 48 KiB only: 80 is 32 past it";
  f->finish(Status::ok());
  EXPECT_EQ(every_change, 7);
  EXPECT_EQ(per_piece, 2) << "the end always wakes";
  // Subscribing after enough body has come wakes at once.
  auto g = std::make_shared<Inflight>();
  g->append(std::string(50000, 'y'));
  int late = 0;
  g->subscribe(
      now, [&] { ++late; }, 40000);
  EXPECT_EQ(late, 1);
}

TEST(InflightTest, KeepsTheShareablePrefixForLateJoiners) {
  auto f = std::make_shared<Inflight>();
  bool resumed = false;
  const int n = static_cast<int>(Inflight::kShareablePrefixBytes / kChunk);
  EXPECT_EQ(fill(*f, n, &resumed), n) << "no reader, but within the prefix: never held back";
  EXPECT_EQ(f->heldBytes(), Inflight::kShareablePrefixBytes);
  EXPECT_TRUE(f->joinable());
  auto late = f->read();
  ASSERT_TRUE(late.valid()) << "a late joiner still reads from the first byte";
  EXPECT_NE(late.chunk(0), nullptr);
}

TEST(InflightTest, PastThePrefixOnlyWhatReadersStillNeedIsHeld) {
  auto f = std::make_shared<Inflight>();
  auto reader = f->read();
  bool resumed = false;
  // Prefix plus the window: then the slow reader holds the fetcher back.
  const int appended = fill(*f, 10'000, &resumed);
  const uint64_t limit = Inflight::kShareablePrefixBytes + Inflight::kWindowBytes;
  EXPECT_LE(static_cast<uint64_t>(appended) * kChunk, limit + kChunk);
  EXPECT_FALSE(resumed);
  EXPECT_LE(f->heldBytes(), limit + kChunk);
  // The reader consumes everything: chunks go, the fetcher resumes.
  for (size_t i = 0; i <= static_cast<size_t>(appended); ++i) (void)reader.chunk(i);
  EXPECT_TRUE(resumed);
  EXPECT_LE(f->heldBytes(), kChunk);
  EXPECT_FALSE(f->joinable()) << "the first bytes are gone";
  EXPECT_FALSE(f->read().valid());
}

TEST(InflightTest, AReaderThatGoesAwayReleasesTheFetcher) {
  auto f = std::make_shared<Inflight>();
  auto slow = f->read();
  bool resumed = false;
  fill(*f, 10'000, &resumed);
  ASSERT_FALSE(resumed);
  slow.release();  // the client disconnected
  EXPECT_TRUE(resumed);
  EXPECT_EQ(f->heldBytes(), 0u);
}

TEST(InflightTest, FinishReleasesAWaitingFetcher) {
  auto f = std::make_shared<Inflight>();
  auto slow = f->read();
  bool resumed = false;
  fill(*f, 10'000, &resumed);
  f->finish(Status::ok());
  EXPECT_TRUE(resumed);
}

TEST(InflightTest, TheCollapserDoesNotShareAFetchWhoseStartIsGone) {
  Collapser c;
  auto leader = c.join("k");
  auto reader = leader.inflight->read();
  bool resumed = false;
  fill(*leader.inflight, 10'000, &resumed);
  for (size_t i = 0; i < 200; ++i) (void)reader.chunk(i);
  ASSERT_FALSE(leader.inflight->joinable());
  auto next = c.join("k");
  EXPECT_TRUE(next.leader) << "a new request fetches on its own";
  EXPECT_NE(next.inflight, leader.inflight);
}

}  // namespace
}  // namespace tern::edge::cache
