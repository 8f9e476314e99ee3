#include "store/journal.hpp"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "core/error.hpp"
#include "store/atomic_file.hpp"
#include "store/h5.hpp"

namespace magrq::store {

namespace {

constexpr const char* kHeaderName = "run.json";

std::string read_text_file(const std::filesystem::path& path) {
  std::ifstream stream(path);
  std::stringstream text;
  text << stream.rdbuf();
  return text.str();
}

}  // namespace

Journal::Journal(const std::filesystem::path& run_dir, const Fingerprint& fingerprint, bool restart)
    : dir_(run_dir / "journal") {
  const auto header = dir_ / kHeaderName;
  if (restart) {
    std::filesystem::remove_all(dir_);
  }
  if (std::filesystem::exists(header)) {
    const Fingerprint stored = Fingerprint::from_json(read_text_file(header), header.string());
    if (const auto difference = stored.describe_difference(fingerprint)) {
      throw DataError("the run folder " + run_dir.string() +
                      " holds a journal of a different run (" + *difference +
                      "); rerun with --restart to discard it, or choose another output.dir");
    }
    return;
  }
  std::filesystem::remove_all(dir_);
  std::filesystem::create_directories(dir_);
  write_text_atomically(header, fingerprint.to_json() + "\n");
}

std::filesystem::path Journal::item_path(int64_t item_id) const {
  char name[32];
  std::snprintf(name, sizeof(name), "item-%07lld.h5", static_cast<long long>(item_id));
  return dir_ / name;
}

bool Journal::has(int64_t item_id) const { return std::filesystem::exists(item_path(item_id)); }

std::vector<int64_t> Journal::finished() const {
  std::vector<int64_t> ids;
  for (const auto& entry : std::filesystem::directory_iterator(dir_)) {
    const std::string name = entry.path().filename().string();
    long long id = 0;
    char tail[8] = {};
    if (std::sscanf(name.c_str(), "item-%lld.h%1s", &id, tail) == 2 && name.size() == 15 &&
        name.ends_with(".h5")) {
      ids.push_back(id);
    }
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

std::vector<int64_t> Journal::drop_unreadable() const {
  std::vector<int64_t> dropped;
  for (const int64_t id : finished()) {
    try {
      const H5Reader reader(item_path(id));
      if (!reader.has_dataset("codes") || !reader.has_dataset("dequant")) {
        throw DataError("incomplete item");
      }
    } catch (const DataError&) {
      std::filesystem::remove(item_path(id));
      dropped.push_back(id);
    }
  }
  return dropped;
}

void Journal::record(const ItemResult& result) const {
  const auto path = item_path(result.item_id);
  H5Writer writer(path);
  writer.write_matrix("codes", result.codes);
  writer.write_matrix("scales", result.scales);
  writer.write_matrix("zeros", result.zeros);
  writer.write_vector("g_idx", result.g_idx);
  writer.write_matrix("dequant", result.dequant);
  writer.write_attribute({"item_id", result.item_id});
  writer.write_attribute({"row_begin", static_cast<int64_t>(result.row_begin)});
  writer.write_attribute({"row_end", static_cast<int64_t>(result.row_end)});
  writer.write_attribute({"statistics", result.statistics.dump()});
  writer.commit();
  sync_file(path);
}

ItemResult Journal::load(int64_t item_id) const {
  const auto path = item_path(item_id);
  const H5Reader reader(path);
  ItemResult result;
  const auto integer = [&](const char* name) {
    const AttributeValue value = reader.read_attribute(name);
    if (!std::holds_alternative<int64_t>(value)) {
      throw DataError(path.string() + ": attribute " + name + " is not an integer");
    }
    return std::get<int64_t>(value);
  };
  result.item_id = integer("item_id");
  if (result.item_id != item_id) {
    throw DataError(detail::concat(path.string(), " contains item ", result.item_id,
                                   "; expected item ", item_id));
  }
  result.row_begin = integer("row_begin");
  result.row_end = integer("row_end");
  result.codes = reader.read_matrix_i32("codes");
  result.scales = reader.read_matrix("scales");
  result.zeros = reader.read_matrix_i32("zeros");
  result.g_idx = reader.read_vector_i32("g_idx");
  result.dequant = reader.read_matrix("dequant");
  const AttributeValue statistics = reader.read_attribute("statistics");
  if (const auto* text = std::get_if<std::string>(&statistics)) {
    result.statistics = nlohmann::ordered_json::parse(*text, nullptr, false);
  }
  if (result.statistics.is_discarded()) {
    throw DataError(path.string() + ": attribute statistics is not valid JSON");
  }
  return result;
}

}  // namespace magrq::store
