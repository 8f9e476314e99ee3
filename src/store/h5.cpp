#include "store/h5.hpp"

#include <unistd.h>

#include <algorithm>
#include <system_error>
#include <utility>

#include "core/error.hpp"

namespace magrq::store {

namespace {

// HDF5 prints its error stack to stderr by default; magrq reports errors itself.
void silence_hdf5_errors() {
  static const bool silenced = [] {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    return true;
  }();
  (void)silenced;
}

std::string dims_text(const std::vector<hsize_t>& dims) {
  std::string text = "[";
  for (size_t i = 0; i < dims.size(); ++i) {
    text += (i ? ", " : "") + std::to_string(dims[i]);
  }
  return text + "]";
}

}  // namespace

H5Id::H5Id(H5Id&& other) noexcept
    : id_(std::exchange(other.id_, H5I_INVALID_HID)), closer_(other.closer_) {}

H5Id& H5Id::operator=(H5Id&& other) noexcept {
  if (this != &other) {
    if (id_ >= 0 && closer_) {
      closer_(id_);
    }
    id_ = std::exchange(other.id_, H5I_INVALID_HID);
    closer_ = other.closer_;
  }
  return *this;
}

H5Id::~H5Id() {
  if (id_ >= 0 && closer_) {
    closer_(id_);
  }
}

H5Reader::H5Reader(const std::filesystem::path& path) : path_(path) {
  silence_hdf5_errors();
  if (!std::filesystem::exists(path)) {
    throw DataError("HDF5 file " + path.string() + " not found");
  }
  const hid_t id = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (id < 0) {
    throw DataError("cannot open " + path.string() +
                    " as HDF5: the file is truncated, corrupt or not HDF5");
  }
  file_ = H5Id(id, H5Fclose);
}

bool H5Reader::has_dataset(const std::string& name) const {
  if (H5Lexists(file_.get(), name.c_str(), H5P_DEFAULT) <= 0) {
    return false;
  }
  H5O_info_t info;
  if (H5Oget_info_by_name2(file_.get(), name.c_str(), &info, H5O_INFO_BASIC, H5P_DEFAULT) < 0) {
    return false;
  }
  return info.type == H5O_TYPE_DATASET;
}

H5Id H5Reader::open_dataset(const std::string& name) const {
  if (!has_dataset(name)) {
    throw DataError(path_.string() + ": dataset " + name + " is missing");
  }
  const hid_t id = H5Dopen2(file_.get(), name.c_str(), H5P_DEFAULT);
  if (id < 0) {
    throw DataError(path_.string() + ": cannot open dataset " + name);
  }
  return H5Id(id, H5Dclose);
}

std::vector<hsize_t> H5Reader::shape(const std::string& name) const {
  const H5Id dataset = open_dataset(name);
  const H5Id space(H5Dget_space(dataset.get()), H5Sclose);
  const int rank = H5Sget_simple_extent_ndims(space.get());
  if (rank < 0) {
    throw DataError(path_.string() + ": cannot read the shape of dataset " + name);
  }
  std::vector<hsize_t> dims(static_cast<size_t>(rank));
  H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  return dims;
}

void H5Reader::require_rank(const std::string& name, const std::vector<hsize_t>& dims,
                            size_t rank) const {
  if (dims.size() != rank) {
    throw DataError(detail::concat(path_.string(), ": dataset ", name, " has shape ",
                                   dims_text(dims), "; expected ", rank, " dimensions"));
  }
}

namespace {

// Reads a whole dataset into `data`, converting from its stored type to memory_type.
// `expected_class` is the HDF5 class the stored type must have (float or integer).
void read_converted(const std::filesystem::path& path, const std::string& name, hid_t dataset,
                    H5T_class_t expected_class, hid_t memory_type, void* data) {
  const H5Id type(H5Dget_type(dataset), H5Tclose);
  const H5T_class_t found = H5Tget_class(type.get());
  if (found != expected_class) {
    throw DataError(path.string() + ": dataset " + name + " has the wrong element type; expected " +
                    (expected_class == H5T_FLOAT ? "float32 or float64" : "an integer type"));
  }
  if (H5Dread(dataset, memory_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0) {
    throw DataError(path.string() + ": reading dataset " + name +
                    " failed (truncated or corrupt file?)");
  }
}

}  // namespace

Matrix H5Reader::read_matrix(const std::string& name) const {
  const auto dims = shape(name);
  require_rank(name, dims, 2);
  Matrix m(static_cast<Index>(dims[0]), static_cast<Index>(dims[1]));
  const H5Id dataset = open_dataset(name);
  read_converted(path_, name, dataset.get(), H5T_FLOAT, H5T_NATIVE_FLOAT, m.data());
  return m;
}

MatrixI H5Reader::read_matrix_i32(const std::string& name) const {
  const auto dims = shape(name);
  require_rank(name, dims, 2);
  MatrixI m(static_cast<Index>(dims[0]), static_cast<Index>(dims[1]));
  const H5Id dataset = open_dataset(name);
  read_converted(path_, name, dataset.get(), H5T_INTEGER, H5T_NATIVE_INT32, m.data());
  return m;
}

MatrixD H5Reader::read_matrix_d(const std::string& name) const {
  const auto dims = shape(name);
  require_rank(name, dims, 2);
  MatrixD m(static_cast<Index>(dims[0]), static_cast<Index>(dims[1]));
  const H5Id dataset = open_dataset(name);
  read_converted(path_, name, dataset.get(), H5T_FLOAT, H5T_NATIVE_DOUBLE, m.data());
  return m;
}

std::vector<int64_t> H5Reader::read_vector_i64(const std::string& name) const {
  const auto dims = shape(name);
  require_rank(name, dims, 1);
  std::vector<int64_t> v(dims[0]);
  const H5Id dataset = open_dataset(name);
  read_converted(path_, name, dataset.get(), H5T_INTEGER, H5T_NATIVE_INT64, v.data());
  return v;
}

VectorI H5Reader::read_vector_i32(const std::string& name) const {
  const auto dims = shape(name);
  require_rank(name, dims, 1);
  VectorI v(static_cast<Index>(dims[0]));
  const H5Id dataset = open_dataset(name);
  read_converted(path_, name, dataset.get(), H5T_INTEGER, H5T_NATIVE_INT32, v.data());
  return v;
}

AttributeValue H5Reader::read_attribute(const std::string& name) const {
  return read_attribute(".", name);
}

bool H5Reader::has_attribute(const std::string& object, const std::string& name) const {
  if (object != "." && H5Lexists(file_.get(), object.c_str(), H5P_DEFAULT) <= 0) {
    return false;
  }
  return H5Aexists_by_name(file_.get(), object.c_str(), name.c_str(), H5P_DEFAULT) > 0;
}

AttributeValue H5Reader::read_attribute(const std::string& object, const std::string& name) const {
  if (!has_attribute(object, name)) {
    throw DataError(path_.string() + ": attribute " + name + " of " + object + " is missing");
  }
  const H5Id attribute(
      H5Aopen_by_name(file_.get(), object.c_str(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT),
      H5Aclose);
  const H5Id type(H5Aget_type(attribute.get()), H5Tclose);
  switch (H5Tget_class(type.get())) {
    case H5T_INTEGER: {
      int64_t value = 0;
      H5Aread(attribute.get(), H5T_NATIVE_INT64, &value);
      return value;
    }
    case H5T_FLOAT: {
      double value = 0;
      H5Aread(attribute.get(), H5T_NATIVE_DOUBLE, &value);
      return value;
    }
    case H5T_STRING: {
      const size_t size = H5Tget_size(type.get());
      std::string value(size, '\0');
      H5Aread(attribute.get(), type.get(), value.data());
      value.resize(value.find('\0') == std::string::npos ? size : value.find('\0'));
      return value;
    }
    default:
      throw DataError(path_.string() + ": attribute " + name +
                      " has an unsupported type; expected an integer, float or string");
  }
}

H5Writer::H5Writer(const std::filesystem::path& final_path) : final_path_(final_path) {
  silence_hdf5_errors();
  temporary_path_ = final_path;
  temporary_path_ += ".tmp-" + std::to_string(::getpid());
  const hid_t id = H5Fcreate(temporary_path_.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (id < 0) {
    throw DataError("cannot create HDF5 file " + temporary_path_.string() +
                    " (does the folder exist and is it writable?)");
  }
  file_ = H5Id(id, H5Fclose);
}

H5Writer::~H5Writer() {
  if (!committed_) {
    file_ = H5Id();
    std::error_code ignored;
    std::filesystem::remove(temporary_path_, ignored);
  }
}

void H5Writer::write_raw(const std::string& name, hid_t memory_type,
                         const std::vector<hsize_t>& dims, const void* data, hsize_t chunk_rows) {
  const H5Id space(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), H5Sclose);
  const H5Id link_properties(H5Pcreate(H5P_LINK_CREATE), H5Pclose);
  H5Pset_create_intermediate_group(link_properties.get(), 1);
  const H5Id create_properties(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
  const bool chunked = chunk_rows > 0 && dims.size() == 2 && dims[0] > 0 && dims[1] > 0;
  if (chunked) {
    const hsize_t chunk[2] = {std::min(chunk_rows, dims[0]), dims[1]};
    H5Pset_chunk(create_properties.get(), 2, chunk);
  }
  const H5Id dataset(H5Dcreate2(file_.get(), name.c_str(), memory_type, space.get(),
                                link_properties.get(), create_properties.get(), H5P_DEFAULT),
                     H5Dclose);
  if (dataset.get() < 0 ||
      H5Dwrite(dataset.get(), memory_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0) {
    throw DataError("writing dataset " + name + " to " + temporary_path_.string() + " failed");
  }
}

void H5Writer::write_matrix(const std::string& name, const Matrix& m) {
  write_raw(name, H5T_NATIVE_FLOAT, {hsize_t(m.rows()), hsize_t(m.cols())}, m.data());
}

void H5Writer::write_matrix(const std::string& name, const MatrixI& m) {
  write_raw(name, H5T_NATIVE_INT32, {hsize_t(m.rows()), hsize_t(m.cols())}, m.data());
}

void H5Writer::write_matrix(const std::string& name, const MatrixD& m, hsize_t chunk_rows) {
  write_raw(name, H5T_NATIVE_DOUBLE, {hsize_t(m.rows()), hsize_t(m.cols())}, m.data(), chunk_rows);
}

void H5Writer::write_vector(const std::string& name, const VectorI& v) {
  write_raw(name, H5T_NATIVE_INT32, {hsize_t(v.size())}, v.data());
}

void H5Writer::write_vector(const std::string& name, const std::vector<int64_t>& v) {
  write_raw(name, H5T_NATIVE_INT64, {hsize_t(v.size())}, v.data());
}

void H5Writer::write_attribute(const Attribute& attribute) {
  write_attribute(".", attribute);
}

void H5Writer::write_attribute(const std::string& object, const Attribute& attribute) {
  const H5Id space(H5Screate(H5S_SCALAR), H5Sclose);
  H5Id type;
  hid_t memory_type = H5T_NATIVE_INT64;
  const void* data = nullptr;
  if (const auto* integer = std::get_if<int64_t>(&attribute.value)) {
    data = integer;
  } else if (const auto* real = std::get_if<double>(&attribute.value)) {
    memory_type = H5T_NATIVE_DOUBLE;
    data = real;
  } else {
    const auto& text = std::get<std::string>(attribute.value);
    type = H5Id(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_size(type.get(), text.empty() ? 1 : text.size());
    memory_type = type.get();
    data = text.empty() ? "" : text.data();
  }
  const H5Id handle(H5Acreate_by_name(file_.get(), object.c_str(), attribute.name.c_str(),
                                      memory_type, space.get(), H5P_DEFAULT, H5P_DEFAULT,
                                      H5P_DEFAULT),
                    H5Aclose);
  if (handle.get() < 0 || H5Awrite(handle.get(), memory_type, data) < 0) {
    throw DataError("writing attribute " + attribute.name + " to " + temporary_path_.string() +
                    " failed");
  }
}

void H5Writer::commit() {
  if (H5Fflush(file_.get(), H5F_SCOPE_GLOBAL) < 0) {
    throw DataError("flushing " + temporary_path_.string() + " failed");
  }
  file_ = H5Id();
  std::error_code error;
  std::filesystem::rename(temporary_path_, final_path_, error);
  if (error) {
    throw DataError("renaming " + temporary_path_.string() + " to " + final_path_.string() +
                    " failed: " + error.message());
  }
  committed_ = true;
}

}  // namespace magrq::store
