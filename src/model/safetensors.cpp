#include "model/safetensors.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <bit>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <cstdio>
#include <fstream>
#include <functional>
#include <set>
#include <utility>

#include "core/error.hpp"

namespace magrq::model {

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian; a big-endian host needs byte swaps");

namespace {

using detail::concat;

// The maximum header length that the safetensors format accepts.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

struct DtypeEntry {
  Dtype dtype;
  const char* name;
  int bits;
};

constexpr std::array<DtypeEntry, 22> kDtypes{{
    {Dtype::BOOL, "BOOL", 8},           {Dtype::U8, "U8", 8},
    {Dtype::I8, "I8", 8},               {Dtype::F8_E5M2, "F8_E5M2", 8},
    {Dtype::F8_E4M3, "F8_E4M3", 8},     {Dtype::F8_E8M0, "F8_E8M0", 8},
    {Dtype::F8_E4M3FNUZ, "F8_E4M3FNUZ", 8}, {Dtype::F8_E5M2FNUZ, "F8_E5M2FNUZ", 8},
    {Dtype::I16, "I16", 16},            {Dtype::U16, "U16", 16},
    {Dtype::F16, "F16", 16},            {Dtype::BF16, "BF16", 16},
    {Dtype::I32, "I32", 32},            {Dtype::U32, "U32", 32},
    {Dtype::F32, "F32", 32},            {Dtype::F64, "F64", 64},
    {Dtype::C64, "C64", 64},            {Dtype::I64, "I64", 64},
    {Dtype::U64, "U64", 64},            {Dtype::F4, "F4", 4},
    {Dtype::F6_E2M3, "F6_E2M3", 6},     {Dtype::F6_E3M2, "F6_E3M2", 6},
}};

const DtypeEntry* find_dtype(const std::string& name) {
  for (const DtypeEntry& entry : kDtypes) {
    if (name == entry.name) {
      return &entry;
    }
  }
  return nullptr;
}

const DtypeEntry& entry_of(Dtype dtype) {
  for (const DtypeEntry& entry : kDtypes) {
    if (entry.dtype == dtype) {
      return entry;
    }
  }
  throw InternalError(concat("dtype enumerator ", static_cast<int>(dtype), " has no table entry"));
}

bool is_float_dtype(Dtype dtype) {
  return dtype == Dtype::F32 || dtype == Dtype::F16 || dtype == Dtype::BF16;
}

// Returns false when the product overflows 64 bits.
bool checked_numel(const std::vector<int64_t>& shape, uint64_t& numel) {
  numel = 1;
  for (int64_t dim : shape) {
    if (__builtin_mul_overflow(numel, static_cast<uint64_t>(dim), &numel)) {
      return false;
    }
  }
  return true;
}

uint16_t load_u16(const std::byte* p) {
  uint16_t value;
  std::memcpy(&value, p, sizeof value);
  return value;
}

// Converts count elements of a floating-point dtype to float32. O(count).
void convert_to_float(Dtype dtype, const std::byte* source, size_t count, float* target) {
  if (dtype == Dtype::F32) {
    std::memcpy(target, source, count * sizeof(float));
    return;
  }
  const bool half = dtype == Dtype::F16;
  const auto n = static_cast<std::ptrdiff_t>(count);
#pragma omp parallel for schedule(static) if (n > (1 << 20))
  for (std::ptrdiff_t i = 0; i < n; ++i) {
    const uint16_t bits = load_u16(source + 2 * i);
    target[i] = half ? half_to_float(bits) : bfloat16_to_float(bits);
  }
}

// Duplicate keys are valid JSON for most parsers but the safetensors reference parser
// rejects them, because the later entry would silently shadow the earlier one.
nlohmann::json parse_rejecting_duplicates(const char* begin, const char* end) {
  std::vector<std::set<std::string>> open_objects;
  auto callback = [&open_objects](int, nlohmann::json::parse_event_t event,
                                  nlohmann::json& parsed) {
    using Event = nlohmann::json::parse_event_t;
    if (event == Event::object_start) {
      open_objects.emplace_back();
    } else if (event == Event::object_end) {
      open_objects.pop_back();
    } else if (event == Event::key) {
      const std::string key = parsed.get<std::string>();
      if (!open_objects.back().insert(key).second) {
        throw DataError(concat("duplicate key \"", key, "\""));
      }
    }
    return true;
  };
  return nlohmann::json::parse(begin, end, callback);
}

std::vector<int64_t> parse_shape(const nlohmann::json& value) {
  if (!value.is_array()) {
    throw DataError("\"shape\" is not an array");
  }
  std::vector<int64_t> shape;
  for (const auto& dim : value) {
    if (!dim.is_number_unsigned() || dim.get<uint64_t>() > uint64_t{1} << 62) {
      throw DataError(concat("\"shape\" has the entry ", dim.dump(),
                             "; expected non-negative integers"));
    }
    shape.push_back(dim.get<int64_t>());
  }
  return shape;
}

std::pair<uint64_t, uint64_t> parse_offsets(const nlohmann::json& value) {
  if (!value.is_array() || value.size() != 2 || !value[0].is_number_unsigned() ||
      !value[1].is_number_unsigned()) {
    throw DataError(concat("\"data_offsets\" is ", value.dump(),
                           "; expected [begin, end] with non-negative integers"));
  }
  return {value[0].get<uint64_t>(), value[1].get<uint64_t>()};
}

TensorInfo parse_tensor_entry(const std::string& name, const nlohmann::json& entry) {
  if (!entry.is_object()) {
    throw DataError("the entry is not an object");
  }
  for (const char* key : {"dtype", "shape", "data_offsets"}) {
    if (!entry.contains(key)) {
      throw DataError(concat("the entry has no \"", key, "\" key"));
    }
  }
  if (!entry["dtype"].is_string()) {
    throw DataError(concat("\"dtype\" is ", entry["dtype"].dump(), "; expected a string"));
  }
  const std::string dtype_text = entry["dtype"].get<std::string>();
  const DtypeEntry* dtype = find_dtype(dtype_text);
  if (dtype == nullptr) {
    throw DataError(concat("unknown dtype \"", dtype_text, "\""));
  }

  TensorInfo info;
  info.name = name;
  info.dtype = dtype->dtype;
  info.shape = parse_shape(entry["shape"]);
  std::tie(info.begin, info.end) = parse_offsets(entry["data_offsets"]);
  if (info.end < info.begin) {
    throw DataError(concat("data_offsets [", info.begin, ", ", info.end, "] end before they begin"));
  }

  uint64_t numel = 0;
  uint64_t bits = 0;
  if (!checked_numel(info.shape, numel) ||
      __builtin_mul_overflow(numel, static_cast<uint64_t>(dtype->bits), &bits)) {
    throw DataError("the shape's element count overflows 64 bits");
  }
  if (bits % 8 != 0) {
    throw DataError(concat("the tensor has ", bits, " bits, which do not end on a byte boundary"));
  }
  if (info.end - info.begin != bits / 8) {
    throw DataError(concat("data_offsets span ", info.end - info.begin, " bytes but ", numel,
                           " elements of ", dtype->name, " need ", bits / 8));
  }
  return info;
}

std::map<std::string, std::string> parse_metadata(const nlohmann::json& value) {
  if (!value.is_object()) {
    throw DataError(concat("\"__metadata__\" is ", value.type_name(),
                           "; expected an object of strings"));
  }
  std::map<std::string, std::string> metadata;
  for (const auto& [key, item] : value.items()) {
    if (!item.is_string()) {
      throw DataError(concat("\"__metadata__\" key \"", key, "\" has the value ", item.dump(),
                             "; expected a string"));
    }
    metadata[key] = item.get<std::string>();
  }
  return metadata;
}

}  // namespace

std::string dtype_name(Dtype dtype) { return entry_of(dtype).name; }

int dtype_bits(Dtype dtype) { return entry_of(dtype).bits; }

float half_to_float(uint16_t bits) {
  const uint32_t sign = static_cast<uint32_t>(bits & 0x8000u) << 16;
  const uint32_t exponent = (bits >> 10) & 0x1fu;
  const uint32_t mantissa = bits & 0x3ffu;
  if (exponent == 0) {
    // Zero or subnormal: mantissa * 2^-24, exact in float32.
    const float magnitude = std::ldexp(static_cast<float>(mantissa), -24);
    return sign != 0 ? -magnitude : magnitude;
  }
  if (exponent == 0x1f) {
    // Inf (mantissa 0) or NaN with its payload moved to the top of the float mantissa.
    return std::bit_cast<float>(sign | 0x7f800000u | (mantissa << 13));
  }
  return std::bit_cast<float>(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

uint16_t float_to_half(float value) {
  const uint32_t bits = std::bit_cast<uint32_t>(value);
  const auto sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  const uint32_t magnitude = bits & 0x7fffffffu;

  if (magnitude > 0x7f800000u) {  // NaN: keep the top payload bits and force quiet
    return static_cast<uint16_t>(sign | 0x7e00u | ((magnitude >> 13) & 0x3ffu));
  }
  // 65520 is halfway between the largest half 65504 and 65536; ties to even round up.
  if (magnitude >= 0x477ff000u) {
    return static_cast<uint16_t>(sign | 0x7c00u);
  }
  if (magnitude < 0x38800000u) {
    // Below the smallest normal half 2^-14: the result is a subnormal q * 2^-24 (or
    // zero, or after rounding the smallest normal, whose bit pattern follows on).
    const uint32_t exponent = magnitude >> 23;
    if (exponent < 102) {  // below 2^-25: rounds to zero
      return sign;
    }
    const uint32_t significand = (magnitude & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126 - exponent;  // 14 .. 24
    uint32_t quotient = significand >> shift;
    const uint32_t remainder = significand & ((1u << shift) - 1);
    const uint32_t halfway = 1u << (shift - 1);
    if (remainder > halfway || (remainder == halfway && (quotient & 1u) != 0)) {
      ++quotient;
    }
    return static_cast<uint16_t>(sign | quotient);
  }
  uint32_t result = ((magnitude >> 23) - 112) << 10 | ((magnitude >> 13) & 0x3ffu);
  const uint32_t remainder = magnitude & 0x1fffu;
  if (remainder > 0x1000u || (remainder == 0x1000u && (result & 1u) != 0)) {
    ++result;  // a carry into the exponent is the correct rounding
  }
  return static_cast<uint16_t>(sign | result);
}

float bfloat16_to_float(uint16_t bits) {
  return std::bit_cast<float>(static_cast<uint32_t>(bits) << 16);
}

uint16_t float_to_bfloat16(float value) {
  const uint32_t bits = std::bit_cast<uint32_t>(value);
  if ((bits & 0x7fffffffu) > 0x7f800000u) {
    return static_cast<uint16_t>((bits >> 16) | 0x0040u);  // quiet NaN, sign and top payload kept
  }
  const uint32_t rounding = 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>((bits + rounding) >> 16);
}

int64_t TensorInfo::numel() const {
  int64_t count = 1;
  for (int64_t dim : shape) {
    count *= dim;
  }
  return count;
}

// ---- Reader ----------------------------------------------------------------------------

SafetensorsFile::SafetensorsFile(const std::filesystem::path& path) : path_(path) {
  map_file();
  try {
    parse_header();
    validate_layout();
  } catch (...) {
    munmap(const_cast<std::byte*>(mapping_), file_size_);
    ::close(fd_);
    throw;
  }
}

SafetensorsFile::~SafetensorsFile() {
  if (mapping_ != nullptr) {
    munmap(const_cast<std::byte*>(mapping_), file_size_);
  }
  if (fd_ >= 0) {
    ::close(fd_);
  }
}

SafetensorsFile::SafetensorsFile(SafetensorsFile&& other) noexcept
    : path_(std::move(other.path_)),
      fd_(std::exchange(other.fd_, -1)),
      mapping_(std::exchange(other.mapping_, nullptr)),
      file_size_(other.file_size_),
      header_size_(other.header_size_),
      metadata_(std::move(other.metadata_)),
      tensors_(std::move(other.tensors_)) {}

SafetensorsFile& SafetensorsFile::operator=(SafetensorsFile&& other) noexcept {
  if (this != &other) {
    SafetensorsFile moved(std::move(other));
    std::swap(path_, moved.path_);
    std::swap(fd_, moved.fd_);
    std::swap(mapping_, moved.mapping_);
    std::swap(file_size_, moved.file_size_);
    std::swap(header_size_, moved.header_size_);
    std::swap(metadata_, moved.metadata_);
    std::swap(tensors_, moved.tensors_);
  }
  return *this;
}

void SafetensorsFile::map_file() {
  fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) {
    throw DataError(concat("failed to open safetensors file ", path_, ": ", std::strerror(errno)));
  }
  struct stat status {};
  if (fstat(fd_, &status) != 0 || !S_ISREG(status.st_mode)) {
    ::close(fd_);
    throw DataError(concat("safetensors file ", path_, " is not a regular file"));
  }
  file_size_ = static_cast<uint64_t>(status.st_size);
  if (file_size_ < 8) {
    ::close(fd_);
    throw DataError(concat("safetensors file ", path_, " has ", file_size_,
                           " bytes; expected at least the 8-byte header length"));
  }
  void* mapped = mmap(nullptr, file_size_, PROT_READ, MAP_PRIVATE, fd_, 0);
  if (mapped == MAP_FAILED) {
    ::close(fd_);
    throw DataError(concat("failed to map safetensors file ", path_, ": ", std::strerror(errno)));
  }
  mapping_ = static_cast<const std::byte*>(mapped);
}

void SafetensorsFile::parse_header() {
  std::memcpy(&header_size_, mapping_, sizeof header_size_);
  if (header_size_ > kMaxHeaderBytes) {
    throw DataError(concat("safetensors file ", path_, " declares a header of ", header_size_,
                           " bytes; the format allows at most ", kMaxHeaderBytes));
  }
  if (8 + header_size_ > file_size_) {
    throw DataError(concat("safetensors file ", path_, " declares a header of ", header_size_,
                           " bytes but the file has only ", file_size_ - 8,
                           " bytes after the length field (truncated file?)"));
  }

  const auto* text = reinterpret_cast<const char*>(mapping_ + 8);
  nlohmann::json header;
  try {
    header = parse_rejecting_duplicates(text, text + header_size_);
  } catch (const nlohmann::json::exception& error) {
    throw DataError(concat("safetensors file ", path_, " has an invalid JSON header: ", error.what()));
  } catch (const DataError& error) {
    throw DataError(concat("safetensors file ", path_, " has an invalid header: ", error.what()));
  }
  if (!header.is_object()) {
    throw DataError(concat("safetensors file ", path_, " has a header of JSON type ",
                           header.type_name(), "; expected an object"));
  }

  for (const auto& [name, entry] : header.items()) {
    try {
      if (name == "__metadata__") {
        metadata_ = parse_metadata(entry);
      } else {
        tensors_.emplace(name, parse_tensor_entry(name, entry));
      }
    } catch (const DataError& error) {
      throw DataError(concat(where(name), ": ", error.what()));
    }
  }
}

void SafetensorsFile::validate_layout() const {
  std::vector<const TensorInfo*> by_offset;
  for (const auto& [name, info] : tensors_) {
    by_offset.push_back(&info);
  }
  std::sort(by_offset.begin(), by_offset.end(), [](const TensorInfo* a, const TensorInfo* b) {
    return std::tie(a->begin, a->end) < std::tie(b->begin, b->end);
  });

  uint64_t expected_begin = 0;
  for (const TensorInfo* info : by_offset) {
    if (info->begin != expected_begin) {
      const char* problem = info->begin > expected_begin ? "leaves a gap" : "overlaps another tensor";
      throw DataError(concat(where(info->name), ": data_offsets [", info->begin, ", ", info->end,
                             "] ", problem, "; expected it to begin at byte ", expected_begin));
    }
    expected_begin = info->end;
  }
  const uint64_t described = 8 + header_size_ + expected_begin;
  if (described != file_size_) {
    throw DataError(concat("safetensors file ", path_, " has ", file_size_,
                           " bytes but its header describes ", described,
                           described > file_size_ ? " (truncated data)" : " (trailing bytes)"));
  }
}

std::string SafetensorsFile::where(const std::string& tensor) const {
  return concat("tensor \"", tensor, "\" in safetensors file ", path_);
}

std::vector<std::string> SafetensorsFile::tensor_names() const {
  std::vector<std::string> names;
  for (const auto& [name, info] : tensors_) {
    names.push_back(name);
  }
  return names;
}

bool SafetensorsFile::contains(const std::string& name) const { return tensors_.count(name) != 0; }

const TensorInfo& SafetensorsFile::info(const std::string& name) const {
  const auto found = tensors_.find(name);
  if (found == tensors_.end()) {
    throw DataError(concat(where(name), " not found"));
  }
  return found->second;
}

std::span<const std::byte> SafetensorsFile::bytes(const std::string& name) const {
  const TensorInfo& tensor = info(name);
  return {data_of(tensor), tensor.end - tensor.begin};
}

const std::byte* SafetensorsFile::data_of(const TensorInfo& tensor) const {
  return mapping_ + 8 + header_size_ + tensor.begin;
}

const TensorInfo& SafetensorsFile::require_rank(const std::string& name, size_t rank) const {
  const TensorInfo& tensor = info(name);
  if (tensor.shape.size() != rank) {
    throw DataError(concat(where(name), " has ", tensor.shape.size(), " dimensions; expected ", rank));
  }
  return tensor;
}

std::vector<float> SafetensorsFile::read_floats(const std::string& name) const {
  const TensorInfo& tensor = info(name);
  if (!is_float_dtype(tensor.dtype)) {
    throw DataError(concat(where(name), " has dtype ", dtype_name(tensor.dtype),
                           "; expected F32, F16 or BF16"));
  }
  std::vector<float> values(static_cast<size_t>(tensor.numel()));
  convert_to_float(tensor.dtype, data_of(tensor), values.size(), values.data());
  return values;
}

Matrix SafetensorsFile::read_matrix(const std::string& name) const {
  const TensorInfo& tensor = require_rank(name, 2);
  return read_rows(name, 0, tensor.shape[0]);
}

Matrix SafetensorsFile::read_rows(const std::string& name, Index row_begin, Index row_end) const {
  const TensorInfo& tensor = require_rank(name, 2);
  if (!is_float_dtype(tensor.dtype)) {
    throw DataError(concat(where(name), " has dtype ", dtype_name(tensor.dtype),
                           "; expected F32, F16 or BF16"));
  }
  const Index rows = tensor.shape[0];
  const Index cols = tensor.shape[1];
  if (row_begin < 0 || row_begin > row_end || row_end > rows) {
    throw DataError(concat(where(name), ": requested rows [", row_begin, ", ", row_end,
                           ") but the tensor has ", rows, " rows"));
  }
  Matrix result(row_end - row_begin, cols);
  const size_t element_bytes = static_cast<size_t>(dtype_bits(tensor.dtype) / 8);
  const std::byte* first = data_of(tensor) + static_cast<size_t>(row_begin * cols) * element_bytes;
  convert_to_float(tensor.dtype, first, static_cast<size_t>(result.size()), result.data());
  return result;
}

Vector SafetensorsFile::read_vector(const std::string& name) const {
  require_rank(name, 1);
  const std::vector<float> values = read_floats(name);
  return Eigen::Map<const Vector>(values.data(), static_cast<Index>(values.size()));
}

MatrixI SafetensorsFile::read_i32_matrix(const std::string& name) const {
  const TensorInfo& tensor = require_rank(name, 2);
  if (tensor.dtype != Dtype::I32) {
    throw DataError(concat(where(name), " has dtype ", dtype_name(tensor.dtype), "; expected I32"));
  }
  MatrixI result(tensor.shape[0], tensor.shape[1]);
  std::memcpy(result.data(), data_of(tensor), tensor.end - tensor.begin);
  return result;
}

VectorI SafetensorsFile::read_i32_vector(const std::string& name) const {
  const TensorInfo& tensor = require_rank(name, 1);
  if (tensor.dtype != Dtype::I32) {
    throw DataError(concat(where(name), " has dtype ", dtype_name(tensor.dtype), "; expected I32"));
  }
  VectorI result(tensor.shape[0]);
  std::memcpy(result.data(), data_of(tensor), tensor.end - tensor.begin);
  return result;
}

std::vector<uint16_t> SafetensorsFile::read_f16_bits(const std::string& name) const {
  const TensorInfo& tensor = info(name);
  if (tensor.dtype != Dtype::F16) {
    throw DataError(concat(where(name), " has dtype ", dtype_name(tensor.dtype), "; expected F16"));
  }
  std::vector<uint16_t> result(static_cast<size_t>(tensor.numel()));
  std::memcpy(result.data(), data_of(tensor), tensor.end - tensor.begin);
  return result;
}

// ---- Writer ----------------------------------------------------------------------------

namespace {

std::vector<std::byte> encode_floats(const float* values, size_t count, Dtype dtype) {
  if (dtype == Dtype::F32) {
    std::vector<std::byte> bytes(count * sizeof(float));
    std::memcpy(bytes.data(), values, bytes.size());
    return bytes;
  }
  if (dtype != Dtype::F16 && dtype != Dtype::BF16) {
    throw ConfigError(concat("cannot write float values as dtype ", dtype_name(dtype),
                             "; expected F32, F16 or BF16"));
  }
  std::vector<std::byte> bytes(count * 2);
  for (size_t i = 0; i < count; ++i) {
    const uint16_t bits = dtype == Dtype::F16 ? float_to_half(values[i]) : float_to_bfloat16(values[i]);
    std::memcpy(bytes.data() + 2 * i, &bits, 2);
  }
  return bytes;
}

std::vector<std::byte> encode_i32(const int32_t* values, size_t count) {
  std::vector<std::byte> bytes(count * sizeof(int32_t));
  std::memcpy(bytes.data(), values, bytes.size());
  return bytes;
}

void require_consistent(const TensorData& tensor) {
  uint64_t numel = 0;
  if (!checked_numel(tensor.shape, numel) ||
      numel * static_cast<uint64_t>(dtype_bits(tensor.dtype)) != tensor.bytes.size() * 8) {
    throw ConfigError(concat("tensor \"", tensor.name, "\" has ", tensor.bytes.size(),
                             " bytes, which do not match its dtype ", dtype_name(tensor.dtype),
                             " and shape"));
  }
}

// Writes bytes to path through a temporary file in the same folder, so that a crash
// never leaves a partial file under the final name.
void write_atomically(const std::filesystem::path& path,
                      const std::function<void(std::ofstream&)>& write_content) {
  std::filesystem::path temporary = path;
  temporary += concat(".tmp-", ::getpid());
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    if (!out) {
      throw DataError(concat("failed to create ", temporary, ": ", std::strerror(errno)));
    }
    write_content(out);
    out.flush();
    if (!out) {
      out.close();
      std::filesystem::remove(temporary);
      throw DataError(concat("failed to write ", temporary, " (disk full?)"));
    }
  }
  std::filesystem::rename(temporary, path);
}

uint64_t total_bytes(const std::vector<const TensorData*>& tensors) {
  uint64_t total = 0;
  for (const TensorData* tensor : tensors) {
    total += tensor->bytes.size();
  }
  return total;
}

void write_file_of(const std::filesystem::path& path, std::vector<const TensorData*> tensors,
                   const std::map<std::string, std::string>& extra_metadata) {
  // Larger elements first keeps every tensor aligned to its element size, because the
  // header is padded to 8 bytes and every earlier tensor's size is a multiple of it.
  std::sort(tensors.begin(), tensors.end(), [](const TensorData* a, const TensorData* b) {
    const int bits_a = dtype_bits(a->dtype);
    const int bits_b = dtype_bits(b->dtype);
    return bits_a != bits_b ? bits_a > bits_b : a->name < b->name;
  });

  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  nlohmann::ordered_json metadata = {{"format", "pt"}};
  for (const auto& [key, value] : extra_metadata) {
    metadata[key] = value;
  }
  header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const TensorData* tensor : tensors) {
    require_consistent(*tensor);
    const uint64_t end = offset + tensor->bytes.size();
    header[tensor->name] = {{"dtype", dtype_name(tensor->dtype)},
                            {"shape", tensor->shape},
                            {"data_offsets", {offset, end}}};
    offset = end;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');

  write_atomically(path, [&](std::ofstream& out) {
    const uint64_t length = text.size();
    out.write(reinterpret_cast<const char*>(&length), sizeof length);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    for (const TensorData* tensor : tensors) {
      out.write(reinterpret_cast<const char*>(tensor->bytes.data()),
                static_cast<std::streamsize>(tensor->bytes.size()));
    }
  });
}

void require_unique_names(const std::vector<TensorData>& tensors) {
  std::set<std::string> names;
  for (const TensorData& tensor : tensors) {
    if (!names.insert(tensor.name).second) {
      throw ConfigError(concat("tensor \"", tensor.name, "\" is given twice"));
    }
    if (tensor.name == "__metadata__") {
      throw ConfigError("\"__metadata__\" is reserved and cannot name a tensor");
    }
  }
}

// Units that must stay together (caller groups, or single tensors), in natural order of
// their first name.
std::vector<std::vector<const TensorData*>> shard_units(const std::vector<TensorData>& tensors,
                                                         const ShardOptions& options) {
  std::map<std::string, const TensorData*> by_name;
  for (const TensorData& tensor : tensors) {
    by_name[tensor.name] = &tensor;
  }
  std::vector<std::vector<const TensorData*>> units;
  std::set<std::string> grouped;
  for (const auto& group : options.groups) {
    std::vector<const TensorData*> unit;
    for (const std::string& name : group) {
      const auto found = by_name.find(name);
      if (found == by_name.end()) {
        throw ConfigError(concat("shard group names tensor \"", name, "\", which is not written"));
      }
      if (!grouped.insert(name).second) {
        throw ConfigError(concat("tensor \"", name, "\" is in more than one shard group"));
      }
      unit.push_back(found->second);
    }
    if (!unit.empty()) {
      units.push_back(std::move(unit));
    }
  }
  for (const TensorData& tensor : tensors) {
    if (grouped.count(tensor.name) == 0) {
      units.push_back({&tensor});
    }
  }
  for (auto& unit : units) {
    std::sort(unit.begin(), unit.end(),
              [](const TensorData* a, const TensorData* b) { return natural_less(a->name, b->name); });
  }
  std::sort(units.begin(), units.end(), [](const auto& a, const auto& b) {
    return natural_less(a.front()->name, b.front()->name);
  });
  return units;
}

std::string shard_file_name(size_t index, size_t count) {
  char name[64];
  std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", index + 1, count);
  return name;
}

}  // namespace

TensorData TensorData::from_matrix(std::string name, const Matrix& values, Dtype dtype) {
  return {std::move(name), dtype, {values.rows(), values.cols()},
          encode_floats(values.data(), static_cast<size_t>(values.size()), dtype)};
}

TensorData TensorData::from_vector(std::string name, const Vector& values, Dtype dtype) {
  return {std::move(name), dtype, {values.size()},
          encode_floats(values.data(), static_cast<size_t>(values.size()), dtype)};
}

TensorData TensorData::from_i32(std::string name, const MatrixI& values) {
  return {std::move(name), Dtype::I32, {values.rows(), values.cols()},
          encode_i32(values.data(), static_cast<size_t>(values.size()))};
}

TensorData TensorData::from_i32(std::string name, const VectorI& values) {
  return {std::move(name), Dtype::I32, {values.size()},
          encode_i32(values.data(), static_cast<size_t>(values.size()))};
}

void ShardOptions::validate() const {
  if (max_shard_bytes == 0) {
    throw ConfigError("max_shard_bytes is 0; expected a positive number of bytes");
  }
  if (extra_metadata.count("format") != 0) {
    throw ConfigError(concat("extra_metadata sets the reserved key \"format\" to \"",
                             extra_metadata.at("format"), "\"; the writer always writes \"pt\""));
  }
}

void write_safetensors(const std::filesystem::path& path, const std::vector<TensorData>& tensors,
                       const std::map<std::string, std::string>& extra_metadata) {
  require_unique_names(tensors);
  if (extra_metadata.count("format") != 0) {
    throw ConfigError("extra_metadata sets the reserved key \"format\"");
  }
  std::vector<const TensorData*> all;
  for (const TensorData& tensor : tensors) {
    all.push_back(&tensor);
  }
  write_file_of(path, all, extra_metadata);
}

std::vector<std::filesystem::path> write_sharded_safetensors(const std::filesystem::path& dir,
                                                             const std::vector<TensorData>& tensors,
                                                             const ShardOptions& options) {
  options.validate();
  require_unique_names(tensors);

  std::vector<std::vector<const TensorData*>> shards;
  uint64_t shard_bytes = 0;
  for (const auto& unit : shard_units(tensors, options)) {
    const uint64_t unit_bytes = total_bytes(unit);
    if (shards.empty() || (shard_bytes > 0 && shard_bytes + unit_bytes > options.max_shard_bytes)) {
      shards.emplace_back();
      shard_bytes = 0;
    }
    shards.back().insert(shards.back().end(), unit.begin(), unit.end());
    shard_bytes += unit_bytes;
  }

  std::filesystem::create_directories(dir);
  if (shards.size() <= 1) {
    const auto path = dir / "model.safetensors";
    write_file_of(path, shards.empty() ? std::vector<const TensorData*>{} : shards.front(),
                  options.extra_metadata);
    return {path};
  }

  std::vector<std::filesystem::path> written;
  nlohmann::json weight_map = nlohmann::json::object();
  uint64_t total_size = 0;
  for (size_t i = 0; i < shards.size(); ++i) {
    const std::string file_name = shard_file_name(i, shards.size());
    write_file_of(dir / file_name, shards[i], options.extra_metadata);
    written.push_back(dir / file_name);
    for (const TensorData* tensor : shards[i]) {
      weight_map[tensor->name] = file_name;
    }
    total_size += total_bytes(shards[i]);
  }

  const nlohmann::json index = {{"metadata", {{"total_size", total_size}}}, {"weight_map", weight_map}};
  const auto index_path = dir / "model.safetensors.index.json";
  write_atomically(index_path, [&](std::ofstream& out) { out << index.dump(2) << "\n"; });
  written.push_back(index_path);
  return written;
}

// ---- Folder of shards -------------------------------------------------------------------

namespace {

nlohmann::json read_json_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) {
    throw DataError(concat("failed to open ", path, ": ", std::strerror(errno)));
  }
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& error) {
    throw DataError(concat(path, " is not valid JSON: ", error.what()));
  }
}

// The weight_map of an index file; shard names must be plain file names so that an
// index cannot point outside its folder.
std::map<std::string, std::string> parse_weight_map(const std::filesystem::path& index_path) {
  const nlohmann::json index = read_json_file(index_path);
  if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object()) {
    throw DataError(concat(index_path, " has no \"weight_map\" object"));
  }
  std::map<std::string, std::string> weight_map;
  for (const auto& [tensor, shard] : index["weight_map"].items()) {
    if (!shard.is_string()) {
      throw DataError(concat(index_path, ": tensor \"", tensor, "\" maps to ", shard.dump(),
                             "; expected a shard file name"));
    }
    const std::string name = shard.get<std::string>();
    if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..") {
      throw DataError(concat(index_path, ": tensor \"", tensor, "\" maps to \"", name,
                             "\"; expected a file name inside the folder"));
    }
    weight_map[tensor] = name;
  }
  return weight_map;
}

}  // namespace

SafetensorsFolder::SafetensorsFolder(const std::filesystem::path& dir) : dir_(dir) {
  const auto single = dir / "model.safetensors";
  const auto index = dir / "model.safetensors.index.json";
  if (std::filesystem::exists(single)) {
    open_single(single);
  } else if (std::filesystem::exists(index)) {
    open_index(index);
  } else {
    throw DataError(concat("checkpoint folder ", dir, " has neither model.safetensors nor "
                           "model.safetensors.index.json"));
  }
}

void SafetensorsFolder::open_single(const std::filesystem::path& path) {
  files_.emplace_back(path);
  for (const std::string& name : files_.back().tensor_names()) {
    file_index_of_tensor_[name] = 0;
  }
}

void SafetensorsFolder::open_index(const std::filesystem::path& index_path) {
  const std::map<std::string, std::string> weight_map = parse_weight_map(index_path);

  std::map<std::string, size_t> shard_numbers;
  for (const auto& [tensor, shard] : weight_map) {
    if (shard_numbers.count(shard) != 0) {
      continue;
    }
    const auto shard_path = dir_ / shard;
    if (!std::filesystem::exists(shard_path)) {
      throw DataError(concat(index_path, " maps tensor \"", tensor, "\" to shard ", shard,
                             ", which does not exist in ", dir_));
    }
    shard_numbers[shard] = files_.size();
    files_.emplace_back(shard_path);
  }

  for (const auto& [tensor, shard] : weight_map) {
    const size_t number = shard_numbers.at(shard);
    if (!files_[number].contains(tensor)) {
      throw DataError(concat(index_path, " maps tensor \"", tensor, "\" to shard ", shard,
                             ", but that shard has no such tensor"));
    }
    file_index_of_tensor_[tensor] = number;
  }
  for (const SafetensorsFile& file : files_) {
    for (const std::string& tensor : file.tensor_names()) {
      if (weight_map.count(tensor) == 0) {
        throw DataError(concat("shard ", file.path(), " has tensor \"", tensor,
                               "\", which is missing from the weight_map of ", index_path));
      }
    }
  }
}

std::vector<std::string> SafetensorsFolder::tensor_names() const {
  std::vector<std::string> names;
  for (const auto& [name, index] : file_index_of_tensor_) {
    names.push_back(name);
  }
  return names;
}

bool SafetensorsFolder::contains(const std::string& name) const {
  return file_index_of_tensor_.count(name) != 0;
}

const SafetensorsFile& SafetensorsFolder::file_of(const std::string& name) const {
  const auto found = file_index_of_tensor_.find(name);
  if (found == file_index_of_tensor_.end()) {
    throw DataError(concat("tensor \"", name, "\" not found in checkpoint folder ", dir_));
  }
  return files_[found->second];
}

bool natural_less(const std::string& left, const std::string& right) {
  size_t i = 0;
  size_t j = 0;
  while (i < left.size() && j < right.size()) {
    const bool left_digit = std::isdigit(static_cast<unsigned char>(left[i])) != 0;
    const bool right_digit = std::isdigit(static_cast<unsigned char>(right[j])) != 0;
    if (left_digit && right_digit) {
      size_t left_end = i;
      size_t right_end = j;
      while (left_end < left.size() && std::isdigit(static_cast<unsigned char>(left[left_end]))) {
        ++left_end;
      }
      while (right_end < right.size() && std::isdigit(static_cast<unsigned char>(right[right_end]))) {
        ++right_end;
      }
      // Compare by value without overflow: strip leading zeros, then longer is larger.
      const std::string_view a = std::string_view(left).substr(i, left_end - i);
      const std::string_view b = std::string_view(right).substr(j, right_end - j);
      const std::string_view a_digits = a.substr(std::min(a.find_first_not_of('0'), a.size()));
      const std::string_view b_digits = b.substr(std::min(b.find_first_not_of('0'), b.size()));
      if (a_digits.size() != b_digits.size()) {
        return a_digits.size() < b_digits.size();
      }
      if (a_digits != b_digits) {
        return a_digits < b_digits;
      }
      if (a.size() != b.size()) {
        return a.size() < b.size();
      }
      i = left_end;
      j = right_end;
      continue;
    }
    if (left[i] != right[j]) {
      return left[i] < right[j];
    }
    ++i;
    ++j;
  }
  return left.size() - i < right.size() - j;
}

}  // namespace magrq::model
