// The tern.v1 messages round-trip and keep their field numbers (changing a
// number breaks deployed edges and coordinators).

#include <gtest/gtest.h>

#include "tern/v1/edge_link.pb.h"
#include "tern/v1/purge.grpc.pb.h"

namespace {

TEST(ProtoTest, PurgeRequestRoundTrips) {
  tern::v1::PurgeRequest req;
  req.add_selectors()->set_url("https://example.com/a?b");
  req.add_selectors()->set_prefix("example.com/static/");
  req.add_selectors()->set_host("example.com");
  req.add_selectors()->set_tag("product-42");
  req.add_selectors()->set_all(true);
  req.set_mode(tern::v1::PURGE_MODE_SOFT);
  req.set_wait(tern::v1::WAIT_MODE_ALL);
  req.set_timeout_ms(5000);
  req.set_idempotency_key("k1");
  std::string wire;
  ASSERT_TRUE(req.SerializeToString(&wire));
  tern::v1::PurgeRequest back;
  ASSERT_TRUE(back.ParseFromString(wire));
  ASSERT_EQ(back.selectors_size(), 5);
  EXPECT_EQ(back.selectors(0).kind_case(), tern::v1::Selector::kUrl);
  EXPECT_EQ(back.selectors(3).tag(), "product-42");
  EXPECT_TRUE(back.selectors(4).all());
  EXPECT_EQ(back.mode(), tern::v1::PURGE_MODE_SOFT);
  EXPECT_EQ(back.timeout_ms(), 5000u);
}

TEST(ProtoTest, FieldNumbersAreStable) {
  const auto* d = tern::v1::Selector::descriptor();
  EXPECT_EQ(d->FindFieldByName("url")->number(), 1);
  EXPECT_EQ(d->FindFieldByName("all")->number(), 5);
  EXPECT_EQ(tern::v1::Hello::descriptor()->FindFieldByName("applied_seq")->number(), 3);
  EXPECT_EQ(tern::v1::LeaseGrant::descriptor()->FindFieldByName("lease_ms")->number(), 2);
  EXPECT_EQ(tern::v1::CoordinatorMessage::descriptor()->FindFieldByName("reset_soft_all")->number(),
            4);
  EXPECT_NE(tern::v1::PurgeService::service_full_name(), nullptr);
}

TEST(ProtoTest, EdgeLinkOneofs) {
  tern::v1::EdgeMessage m;
  m.mutable_hello()->set_edge_id("edge-0");
  m.mutable_hello()->set_applied_seq(41);
  EXPECT_EQ(m.msg_case(), tern::v1::EdgeMessage::kHello);
  m.mutable_ack()->set_applied_seq(42);  // replaces the hello
  EXPECT_EQ(m.msg_case(), tern::v1::EdgeMessage::kAck);
  tern::v1::CoordinatorMessage c;
  auto* p = c.mutable_purges()->add_purges();
  p->set_seq(42);
  p->add_selectors()->set_tag("t");
  std::string wire = c.SerializeAsString();
  tern::v1::CoordinatorMessage back;
  ASSERT_TRUE(back.ParseFromString(wire));
  EXPECT_EQ(back.purges().purges(0).seq(), 42u);
}

}  // namespace
