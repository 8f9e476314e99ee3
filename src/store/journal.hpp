// The run journal: each finished work item is written to its own HDF5 file under
// RUN_DIR/journal/ (temporary name, then rename) before the coordinator counts it. A rerun
// after a crash or kill -9 therefore continues with the items that are missing.
//
// journal/run.json contains the run's fingerprint (configuration, model, Hessian store).
// A journal whose fingerprint differs from the run's is rejected unless the caller
// restarts it, which deletes the old items.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/types.hpp"
#include "store/fingerprint.hpp"

namespace magrq::store {

// The result of one work item: rows [row_begin, row_end) of one module.
struct ItemResult {
  int64_t item_id = 0;
  Index row_begin = 0;
  Index row_end = 0;
  MatrixI codes;    // rows x in, each in [0, 2^bits)
  Matrix scales;    // groups x rows
  MatrixI zeros;    // groups x rows
  VectorI g_idx;    // in
  Matrix dequant;   // rows x in, the dequantized weights
  nlohmann::ordered_json statistics = nlohmann::ordered_json::object();
};

class Journal {
 public:
  // Opens RUN_DIR/journal. With restart, any existing journal is deleted first. Without
  // it, an existing journal must carry the same fingerprint, else DataError names the
  // differing part and suggests --restart.
  Journal(const std::filesystem::path& run_dir, const Fingerprint& fingerprint, bool restart);

  const std::filesystem::path& directory() const { return dir_; }
  bool has(int64_t item_id) const;
  // Ids of the items already finished.
  std::vector<int64_t> finished() const;
  // Deletes item files that HDF5 cannot open (truncated or damaged after they were
  // written), so that a resumed run recomputes them; returns their ids.
  std::vector<int64_t> drop_unreadable() const;
  // Writes an item durably: the file is complete under its final name when this returns.
  void record(const ItemResult& result) const;
  ItemResult load(int64_t item_id) const;

 private:
  std::filesystem::path item_path(int64_t item_id) const;

  std::filesystem::path dir_;
};

}  // namespace magrq::store
