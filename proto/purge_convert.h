#pragma once
// Conversions between the tern.v1 purge messages and the storage model of a
// purge (storage/purge_spec.h), shared by the coordinator (which validates
// and normalizes what users send) and the edge (which applies what the
// coordinator pushes).

#include "common/result.h"
#include "storage/purge_spec.h"
#include "tern/v1/edge_link.pb.h"
#include "tern/v1/purge.pb.h"

namespace tern::proto {

inline constexpr size_t kMaxSelectorsPerPurge = 1000;

// Validates and normalizes one selector; errors name what is wrong.
Result<storage::PurgeSelector> fromProto(const tern::v1::Selector& selector);
tern::v1::Selector toProto(const storage::PurgeSelector& selector);

storage::PurgeMode fromProto(tern::v1::PurgeMode mode);
tern::v1::PurgeMode toProto(storage::PurgeMode mode);

// The whole selector list: 1 to kMaxSelectorsPerPurge valid selectors,
// errors prefixed with "selectors[i]".
Result<std::vector<storage::PurgeSelector>> selectorsFromProto(
    const google::protobuf::RepeatedPtrField<tern::v1::Selector>& selectors);

// A logged purge as an edge applies it: the selectors are already
// normalized and are taken as they are, but checked again (an edge never
// trusts its input; see storage::checkNormalizedSelector).
Result<storage::PurgeSpec> specFromProto(const tern::v1::Purge& purge);
// One logged selector, taken as it is (checked, never normalized again).
Result<storage::PurgeSelector> loggedFromProto(const tern::v1::Selector& selector);
// One logged selector as it was logged, unchecked: to show it (a purge's
// status echoes what was logged, whatever release logged it). Fails only
// for a selector with no kind.
Result<storage::PurgeSelector> echoFromProto(const tern::v1::Selector& selector);

}  // namespace tern::proto
