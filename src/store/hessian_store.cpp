#include "store/hessian_store.hpp"

#include <algorithm>
#include <cstdio>

#include "core/error.hpp"

namespace magrq::store {

namespace {

// Rows per HDF5 chunk of xtx: a worker reading H for a block of columns touches few chunks,
// and chunks stay near 1 MiB for in_features up to 8192.
constexpr hsize_t kChunkRows = 16;

std::string group_name(int64_t layer, const std::string& input) {
  return "layers/" + std::to_string(layer) + "/" + input;
}

void require_input_name(const std::string& input) {
  const bool known = std::find_if(kLinearInputNames.begin(), kLinearInputNames.end(),
                                  [&](const char* name) { return input == name; }) !=
                     kLinearInputNames.end();
  if (!known) {
    throw ConfigError("unknown linear input '" + input +
                      "'; expected attn_in, attn_out, mlp_in or mlp_out");
  }
}

int64_t read_int(const H5Reader& reader, const std::string& object, const std::string& name) {
  const AttributeValue value = reader.read_attribute(object, name);
  if (const auto* integer = std::get_if<int64_t>(&value)) {
    return *integer;
  }
  throw DataError(reader.path().string() + ": attribute " + name + " of " + object +
                  " is not an integer");
}

double read_real(const H5Reader& reader, const std::string& object, const std::string& name) {
  const AttributeValue value = reader.read_attribute(object, name);
  if (const auto* real = std::get_if<double>(&value)) {
    return *real;
  }
  throw DataError(reader.path().string() + ": attribute " + name + " of " + object +
                  " is not a float");
}

std::string read_text(const H5Reader& reader, const std::string& name) {
  const AttributeValue value = reader.read_attribute(name);
  if (const auto* text = std::get_if<std::string>(&value)) {
    return *text;
  }
  throw DataError(reader.path().string() + ": attribute " + name + " is not a string");
}

void write_inputs(H5Writer& writer, int64_t layer, const std::map<std::string, StoredHessian>& inputs,
                  bool store_float32) {
  for (const auto& [input, hessian] : inputs) {
    require_input_name(input);
    const std::string dataset = group_name(layer, input) + "/xtx";
    if (store_float32) {
      writer.write_matrix(dataset, Matrix(hessian.xtx.cast<float>()));
    } else {
      writer.write_matrix(dataset, hessian.xtx, kChunkRows);
    }
    const std::string group = group_name(layer, input);
    writer.write_attribute(group, {"tokens", hessian.statistics.tokens});
    writer.write_attribute(group, {"max_abs_activation", hessian.statistics.max_abs_activation});
    writer.write_attribute(group, {"dead_channels", hessian.statistics.dead_channels});
  }
}

}  // namespace

std::string layer_file_name(int64_t layer) {
  char name[32];
  std::snprintf(name, sizeof(name), "layer-%05lld.h5", static_cast<long long>(layer));
  return name;
}

HessianStoreWriter::HessianStoreWriter(const std::filesystem::path& path, HessianStoreHeader header)
    : path_(path), header_(std::move(header)) {
  if (header_.layout == StoreLayout::single) {
    single_file_ = std::make_unique<H5Writer>(path_);
    write_header(*single_file_);
    return;
  }
  std::filesystem::create_directories(path_);
  H5Writer index(path_ / "index.h5");
  write_header(index);
  index.commit();
}

HessianStoreWriter::~HessianStoreWriter() = default;

void HessianStoreWriter::write_header(H5Writer& writer) const {
  writer.write_attribute({"format_version", kHessianStoreFormatVersion});
  writer.write_attribute({"tool_version", std::string(MAGRQ_VERSION)});
  writer.write_attribute({"fingerprint", header_.fingerprint.to_json()});
  writer.write_attribute({"num_layers", header_.num_layers});
  writer.write_attribute({"precision", std::string(header_.store_float32 ? "float32" : "float64")});
  writer.write_attribute(
      {"layout", std::string(header_.layout == StoreLayout::single ? "single" : "per_layer")});
  writer.write_vector("windows", header_.window_starts);
}

void HessianStoreWriter::write_layer(int64_t layer,
                                     const std::map<std::string, StoredHessian>& inputs) {
  if (layer < 0 || layer >= header_.num_layers) {
    throw ConfigError(detail::concat("layer ", layer, " is outside the store's 0..",
                                     header_.num_layers - 1));
  }
  if (single_file_) {
    write_inputs(*single_file_, layer, inputs, header_.store_float32);
    return;
  }
  H5Writer file(path_ / layer_file_name(layer));
  file.write_attribute({"fingerprint", header_.fingerprint.to_json()});
  file.write_attribute({"layer", layer});
  write_inputs(file, layer, inputs, header_.store_float32);
  file.commit();
}

void HessianStoreWriter::commit() {
  if (single_file_) {
    single_file_->commit();
    single_file_.reset();
  }
}

HessianStoreReader::HessianStoreReader(const std::filesystem::path& path) : path_(path) {
  const bool per_layer = std::filesystem::is_directory(path);
  index_ = std::make_unique<H5Reader>(per_layer ? path / "index.h5" : path);
  const int64_t version = read_int(*index_, ".", "format_version");
  if (version != kHessianStoreFormatVersion) {
    throw DataError(detail::concat(path.string(), ": Hessian store format version ", version,
                                   "; this magrq reads version ", kHessianStoreFormatVersion));
  }
  header_.fingerprint = Fingerprint::from_json(read_text(*index_, "fingerprint"), path.string());
  header_.num_layers = read_int(*index_, ".", "num_layers");
  header_.store_float32 = read_text(*index_, "precision") == "float32";
  header_.layout = per_layer ? StoreLayout::per_layer : StoreLayout::single;
  header_.window_starts = index_->read_vector_i64("windows");
}

void HessianStoreReader::require_fingerprint(const Fingerprint& expected) const {
  const auto difference = header_.fingerprint.describe_difference(expected);
  if (difference) {
    throw DataError("Hessian store " + path_.string() + " does not match this run: " + *difference +
                    ". Use another store.path, or rerun with --restart to replace the store");
  }
}

const H5Reader& HessianStoreReader::layer_file(int64_t layer) const {
  if (header_.layout == StoreLayout::single) {
    return *index_;
  }
  auto& slot = layer_files_[layer];
  if (!slot) {
    const auto file = path_ / layer_file_name(layer);
    slot = std::make_unique<H5Reader>(file);
    const auto stored = Fingerprint::from_json(read_text(*slot, "fingerprint"), file.string());
    if (const auto difference = stored.describe_difference(header_.fingerprint)) {
      throw DataError(file.string() + " belongs to another store: " + *difference);
    }
  }
  return *slot;
}

bool HessianStoreReader::has_layer(int64_t layer) const {
  if (layer < 0 || layer >= header_.num_layers) {
    return false;
  }
  if (header_.layout == StoreLayout::per_layer) {
    return std::filesystem::exists(path_ / layer_file_name(layer));
  }
  return std::all_of(kLinearInputNames.begin(), kLinearInputNames.end(), [&](const char* input) {
    return index_->has_dataset(group_name(layer, input) + "/xtx");
  });
}

StoredHessian HessianStoreReader::read(int64_t layer, const std::string& input) const {
  require_input_name(input);
  if (!has_layer(layer)) {
    throw DataError(detail::concat("Hessian store ", path_.string(), " has no layer ", layer,
                                   " (it holds ", header_.num_layers, " layers)"));
  }
  const H5Reader& file = layer_file(layer);
  const std::string group = group_name(layer, input);
  StoredHessian hessian;
  hessian.xtx = file.read_matrix_d(group + "/xtx");
  if (hessian.xtx.rows() != hessian.xtx.cols()) {
    throw DataError(detail::concat(file.path().string(), ": ", group, "/xtx is ", hessian.xtx.rows(),
                                   " x ", hessian.xtx.cols(), "; expected a square matrix"));
  }
  hessian.statistics.tokens = read_int(file, group, "tokens");
  hessian.statistics.max_abs_activation = read_real(file, group, "max_abs_activation");
  hessian.statistics.dead_channels = read_int(file, group, "dead_channels");
  return hessian;
}

}  // namespace magrq::store
