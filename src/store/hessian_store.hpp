// The Hessian store: X^T X of the calibration activations entering each linear layer,
// kept so that later runs (a sweep over bits, group sizes or alpha, or a rerun) reuse them.
//
// Two layouts (the format is described in docs/formats.md):
// - single: one HDF5 file with the header attributes, /windows, and per layer and input a
//   group /layers/<layer>/<input> holding dataset xtx and its statistics.
// - per_layer: a folder with index.h5 (header and /windows) and layer-<layer>.h5 per layer
//   (the same groups, and a copy of the fingerprint), so 70B-scale runs write and resume
//   one layer at a time.
// Every file is written under a temporary name and renamed when complete.
#pragma once

#include <array>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/types.hpp"
#include "store/fingerprint.hpp"
#include "store/h5.hpp"

namespace magrq::store {

inline constexpr int64_t kHessianStoreFormatVersion = 1;

// The four distinct linear inputs of a Llama decoder layer: attention input (q/k/v),
// o_proj input, MLP input (gate/up) and down_proj input.
inline constexpr std::array<const char*, 4> kLinearInputNames = {"attn_in", "attn_out", "mlp_in",
                                                                 "mlp_out"};

enum class StoreLayout { single, per_layer };

struct HessianStatistics {
  int64_t tokens = 0;               // calibration tokens summed into X^T X
  double max_abs_activation = 0.0;  // largest |x| seen in this input
  int64_t dead_channels = 0;        // input channels that were 0 for every token
};

struct StoredHessian {
  MatrixD xtx;  // in x in, the sum over calibration tokens of x x^T
  HessianStatistics statistics;
};

struct HessianStoreHeader {
  Fingerprint fingerprint;            // model, tokenizer, text source and sampling settings
  std::vector<int64_t> window_starts;  // token offset of each calibration window
  int64_t num_layers = 0;
  bool store_float32 = false;  // xtx stored as float32 (half the size) instead of float64
  StoreLayout layout = StoreLayout::single;
};

class HessianStoreWriter {
 public:
  HessianStoreWriter(const std::filesystem::path& path, HessianStoreHeader header);
  ~HessianStoreWriter();

  // Adds one layer's inputs. With the per_layer layout the layer's file is complete (renamed
  // to its final name) when this returns.
  void write_layer(int64_t layer, const std::map<std::string, StoredHessian>& inputs);
  // Completes the store: with the single layout, renames the one file to its final name.
  void commit();

 private:
  void write_header(H5Writer& writer) const;

  std::filesystem::path path_;
  HessianStoreHeader header_;
  std::unique_ptr<H5Writer> single_file_;
};

class HessianStoreReader {
 public:
  explicit HessianStoreReader(const std::filesystem::path& path);

  const HessianStoreHeader& header() const { return header_; }
  // Throws DataError naming the store and the first fingerprint part that differs.
  void require_fingerprint(const Fingerprint& expected) const;
  bool has_layer(int64_t layer) const;
  StoredHessian read(int64_t layer, const std::string& input) const;

 private:
  const H5Reader& layer_file(int64_t layer) const;

  std::filesystem::path path_;
  HessianStoreHeader header_;
  std::unique_ptr<H5Reader> index_;
  mutable std::map<int64_t, std::unique_ptr<H5Reader>> layer_files_;
};

// File name of one layer in the per_layer layout.
std::string layer_file_name(int64_t layer);

}  // namespace magrq::store
