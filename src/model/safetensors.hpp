// The safetensors format: a validating reader over a memory-mapped file and a writer
// that shards tensors the way Hugging Face checkpoints do.
//
// Layout: bytes 0-7 hold N, the header length (unsigned 64-bit little-endian); bytes
// 8 .. 8+N-1 hold a UTF-8 JSON object mapping each tensor name to its dtype, shape and
// [begin, end) byte offsets into the data buffer that starts at byte 8+N. An optional
// "__metadata__" key maps strings to strings. Data is little-endian, row-major.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/types.hpp"

namespace magrq::model {

// Every dtype the safetensors format defines. The reader accepts files holding any of
// them; only F32, F16, BF16 and I32 tensors can be read as numbers.
enum class Dtype {
  BOOL, U8, I8, F8_E5M2, F8_E4M3, F8_E8M0, F8_E4M3FNUZ, F8_E5M2FNUZ,
  I16, U16, F16, BF16, I32, U32, F32, F64, C64, I64, U64,
  F4, F6_E2M3, F6_E3M2,
};

// The dtype's name as written in a header ("BF16").
std::string dtype_name(Dtype dtype);

// Size of one element in bits (4 for F4, 6 for the F6 types, 8 to 128 for the rest).
int dtype_bits(Dtype dtype);

// Exact conversions between IEEE binary16, bfloat16 and float32. Narrowing rounds to
// nearest, ties to even; values beyond the target range become Inf, and NaN stays a
// (quiet) NaN with its sign. Subnormals are kept in both directions.
float half_to_float(uint16_t bits);
uint16_t float_to_half(float value);
float bfloat16_to_float(uint16_t bits);
uint16_t float_to_bfloat16(float value);

// One header entry: offsets are relative to the data buffer, end is one past the last byte.
struct TensorInfo {
  std::string name;
  Dtype dtype = Dtype::F32;
  std::vector<int64_t> shape;
  uint64_t begin = 0;
  uint64_t end = 0;

  int64_t numel() const;
};

// A read-only, memory-mapped safetensors file, validated on open as the format's
// reference parser does. Any violation throws DataError naming the file (and the
// tensor), so later reads can never go past the end of the mapping.
//
// Reads return copies. F32, F16 and BF16 convert to float32 on read.
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::filesystem::path& path);
  ~SafetensorsFile();
  SafetensorsFile(SafetensorsFile&& other) noexcept;
  SafetensorsFile& operator=(SafetensorsFile&& other) noexcept;
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::filesystem::path& path() const { return path_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  // Names of all tensors, sorted.
  std::vector<std::string> tensor_names() const;
  bool contains(const std::string& name) const;
  // Throws DataError when the file has no tensor of that name.
  const TensorInfo& info(const std::string& name) const;

  // The tensor's bytes inside the mapping; valid while this object lives.
  std::span<const std::byte> bytes(const std::string& name) const;

  // A 2-D floating-point tensor (F32, F16 or BF16) as float32.
  Matrix read_matrix(const std::string& name) const;
  // Rows [row_begin, row_end) of a 2-D floating-point tensor: reads only those bytes, so
  // a worker that owns a range of output channels touches only its part of the file.
  Matrix read_rows(const std::string& name, Index row_begin, Index row_end) const;
  // A 1-D floating-point tensor as float32.
  Vector read_vector(const std::string& name) const;
  // Any floating-point tensor flattened in row-major order.
  std::vector<float> read_floats(const std::string& name) const;
  // A 2-D I32 tensor (GPTQ qweight, qzeros) and a 1-D I32 tensor (g_idx).
  MatrixI read_i32_matrix(const std::string& name) const;
  VectorI read_i32_vector(const std::string& name) const;
  // The raw binary16 bit patterns of an F16 tensor, flattened in row-major order.
  std::vector<uint16_t> read_f16_bits(const std::string& name) const;

 private:
  void map_file();
  void parse_header();
  void validate_layout() const;
  const TensorInfo& require_rank(const std::string& name, size_t rank) const;
  const std::byte* data_of(const TensorInfo& info) const;
  std::string where(const std::string& tensor) const;

  std::filesystem::path path_;
  int fd_ = -1;
  const std::byte* mapping_ = nullptr;
  uint64_t file_size_ = 0;
  uint64_t header_size_ = 0;
  std::map<std::string, std::string> metadata_;
  std::map<std::string, TensorInfo> tensors_;
};

// One tensor ready to be written: its little-endian bytes in row-major order.
struct TensorData {
  std::string name;
  Dtype dtype = Dtype::F32;
  std::vector<int64_t> shape;
  std::vector<std::byte> bytes;

  // dtype must be F32, F16 or BF16; F16 and BF16 round to nearest even.
  static TensorData from_matrix(std::string name, const Matrix& values, Dtype dtype);
  static TensorData from_vector(std::string name, const Vector& values, Dtype dtype);
  static TensorData from_i32(std::string name, const MatrixI& values);
  static TensorData from_i32(std::string name, const VectorI& values);
};

// Writer options. Units: bytes of tensor data (headers excluded).
struct ShardOptions {
  // Maximum tensor bytes per shard, > 0. A single tensor or group larger than this
  // gets a shard of its own, which is then larger than the limit.
  uint64_t max_shard_bytes = uint64_t{5} << 30;  // 5 GiB, as Hugging Face writers default
  // String metadata added next to {"format": "pt"}; the key "format" is reserved.
  std::map<std::string, std::string> extra_metadata;
  // Tensor names that must share one shard (for example the tensors of one quantized
  // module). Every name must be among the tensors written and in at most one group.
  std::vector<std::vector<std::string>> groups;

  void validate() const;
};

// Writes one safetensors file: header padded with spaces to a multiple of 8 bytes,
// metadata {"format": "pt"} plus extra_metadata, tensors ordered by descending element
// size and then by name. The file appears under its final name only when complete
// (written to a temporary name, then renamed).
void write_safetensors(const std::filesystem::path& path, const std::vector<TensorData>& tensors,
                       const std::map<std::string, std::string>& extra_metadata = {});

// Writes tensors into dir as one model.safetensors when they fit in one shard, else as
// model-00001-of-0000N.safetensors ... plus model.safetensors.index.json (metadata
// total_size = sum of tensor bytes, weight_map = tensor -> file). Tensors are assigned to
// shards in natural name order ("layers.2" before "layers.10"), a group at the position
// of its first name. Returns the files written, the index last.
std::vector<std::filesystem::path> write_sharded_safetensors(const std::filesystem::path& dir,
                                                             const std::vector<TensorData>& tensors,
                                                             const ShardOptions& options);

// The tensors of a checkpoint folder: model.safetensors, or the shards listed in
// model.safetensors.index.json ("weight_map": tensor name -> shard file name). As in
// transformers, a single model.safetensors is used when both exist. Opening validates
// every shard and the index: a missing shard, a shard path outside the folder, a tensor
// listed but absent from its shard, or a tensor present in a shard but missing from the
// index is a DataError naming the tensor and the shard. The index's total_size is not
// checked, because loaders ignore it.
class SafetensorsFolder {
 public:
  explicit SafetensorsFolder(const std::filesystem::path& dir);

  const std::filesystem::path& directory() const { return dir_; }
  // Names of all tensors, sorted.
  std::vector<std::string> tensor_names() const;
  bool contains(const std::string& name) const;
  // The file holding the tensor; throws DataError naming the tensor and the folder.
  const SafetensorsFile& file_of(const std::string& name) const;
  const TensorInfo& info(const std::string& name) const { return file_of(name).info(name); }
  const std::vector<SafetensorsFile>& files() const { return files_; }

 private:
  void open_single(const std::filesystem::path& path);
  void open_index(const std::filesystem::path& index_path);

  std::filesystem::path dir_;
  std::vector<SafetensorsFile> files_;
  std::map<std::string, size_t> file_index_of_tensor_;
};

// Orders strings with embedded decimal numbers by value: "a.2.b" < "a.10.b".
bool natural_less(const std::string& left, const std::string& right);

}  // namespace magrq::model
