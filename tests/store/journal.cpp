#include "store/journal.hpp"

#include <gtest/gtest.h>

#include "common/test_data.hpp"
#include "core/error.hpp"

namespace magrq::store {
namespace {

Fingerprint run_fingerprint(const std::string& config) {
  Fingerprint fingerprint;
  fingerprint.set("config", config);
  fingerprint.set("store", "s1");
  return fingerprint;
}

ItemResult make_item(int64_t id) {
  ItemResult item;
  item.item_id = id;
  item.row_begin = 8;
  item.row_end = 12;
  item.codes = MatrixI::Constant(4, 6, 3);
  item.scales = Matrix::Constant(2, 4, 0.5f);
  item.zeros = MatrixI::Constant(2, 4, 8);
  item.g_idx = VectorI::LinSpaced(6, 0, 5) / 3;
  item.dequant = Matrix::Random(4, 6);
  item.statistics = {{"output_error", 1.25}, {"rank", 2}};
  return item;
}

TEST(Journal, RecordedItemLoadsExactly) {
  const auto dir = testing::scratch_dir("journal_round_trip");
  const Journal journal(dir, run_fingerprint("a"), false);
  const ItemResult item = make_item(5);
  journal.record(item);
  EXPECT_TRUE(journal.has(5));
  EXPECT_FALSE(journal.has(4));
  EXPECT_EQ(journal.finished(), (std::vector<int64_t>{5}));
  const ItemResult back = journal.load(5);
  EXPECT_EQ(back.row_begin, 8);
  EXPECT_EQ(back.row_end, 12);
  EXPECT_EQ(back.codes, item.codes);
  EXPECT_EQ(back.scales, item.scales);
  EXPECT_EQ(back.zeros, item.zeros);
  EXPECT_EQ(back.g_idx, item.g_idx);
  EXPECT_EQ(back.dequant, item.dequant);
  EXPECT_EQ(back.statistics["output_error"], 1.25);
}

TEST(Journal, ReopenWithSameFingerprintKeepsItems) {
  const auto dir = testing::scratch_dir("journal_reopen");
  Journal(dir, run_fingerprint("a"), false).record(make_item(1));
  const Journal again(dir, run_fingerprint("a"), false);
  EXPECT_TRUE(again.has(1));
}

TEST(Journal, ChangedConfigIsRejectedWithoutRestart) {
  const auto dir = testing::scratch_dir("journal_changed");
  Journal(dir, run_fingerprint("a"), false).record(make_item(1));
  try {
    Journal(dir, run_fingerprint("b"), false);
    FAIL() << "expected DataError";
  } catch (const DataError& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("config differs: stored a, this run b"), std::string::npos) << message;
    EXPECT_NE(message.find("--restart"), std::string::npos) << message;
  }
  const Journal restarted(dir, run_fingerprint("b"), true);
  EXPECT_FALSE(restarted.has(1));
  EXPECT_TRUE(restarted.finished().empty());
}

TEST(Journal, UnreadableItemsAreDropped) {
  const auto dir = testing::scratch_dir("journal_drop");
  const Journal journal(dir, run_fingerprint("a"), false);
  journal.record(make_item(1));
  journal.record(make_item(2));
  const auto path = journal.directory() / "item-0000002.h5";
  std::filesystem::resize_file(path, std::filesystem::file_size(path) / 3);
  EXPECT_EQ(journal.drop_unreadable(), (std::vector<int64_t>{2}));
  EXPECT_EQ(journal.finished(), (std::vector<int64_t>{1}));
}

TEST(Journal, TruncatedItemIsAnError) {
  const auto dir = testing::scratch_dir("journal_truncated");
  const Journal journal(dir, run_fingerprint("a"), false);
  journal.record(make_item(2));
  const auto path = journal.directory() / "item-0000002.h5";
  ASSERT_TRUE(std::filesystem::exists(path));
  std::filesystem::resize_file(path, std::filesystem::file_size(path) / 3);
  EXPECT_THROW(journal.load(2), DataError);
}

}  // namespace
}  // namespace magrq::store
