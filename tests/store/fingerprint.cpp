#include "store/fingerprint.hpp"

#include <gtest/gtest.h>

#include <fstream>

#include "common/test_data.hpp"

namespace magrq::store {
namespace {

TEST(Fingerprint, JsonRoundTripKeepsOrder) {
  Fingerprint fingerprint;
  fingerprint.set("seed", "0");
  fingerprint.set("model", "abc");
  const Fingerprint back = Fingerprint::from_json(fingerprint.to_json(), "test");
  EXPECT_EQ(back.parts(), fingerprint.parts());
  EXPECT_EQ(fingerprint.to_json(), R"({"seed":"0","model":"abc"})");
}

TEST(Fingerprint, DifferenceNamesThePart) {
  Fingerprint stored;
  stored.set("model", "abc");
  stored.set("seed", "0");
  Fingerprint expected = stored;
  EXPECT_FALSE(stored.describe_difference(expected).has_value());
  expected.set("seed", "1");
  const auto difference = stored.describe_difference(expected);
  ASSERT_TRUE(difference.has_value());
  EXPECT_EQ(*difference, "seed differs: stored 0, this run 1");
  Fingerprint extra = stored;
  extra.set("mode", "sequential");
  EXPECT_NE(stored.describe_difference(extra)->find("mode is missing"), std::string::npos);
  EXPECT_NE(extra.describe_difference(stored)->find("mode is stored"), std::string::npos);
}

TEST(Fingerprint, FileHashMatchesContentHash) {
  const auto dir = testing::scratch_dir("fingerprint_hash");
  std::ofstream(dir / "a.txt") << "hello";
  EXPECT_EQ(file_hash(dir / "a.txt"), content_hash("hello"));
  EXPECT_EQ(content_hash("hello").size(), 32u);
  EXPECT_NE(content_hash("hello"), content_hash("hellp"));
}

}  // namespace
}  // namespace magrq::store
