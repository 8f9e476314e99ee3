// Small RAII layer over the HDF5 C API: files written under a temporary name and renamed
// when complete, 2-D datasets read into and written from Eigen matrices, scalar attributes.
// Every error names the file and the dataset or attribute, what was found and what was
// expected; HDF5's own error stack printing is turned off.
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <variant>
#include <vector>

#include "core/types.hpp"

namespace magrq::store {

// Owns one HDF5 identifier and closes it with the matching H5*close function.
class H5Id {
 public:
  using Closer = herr_t (*)(hid_t);
  H5Id() = default;
  H5Id(hid_t id, Closer closer) : id_(id), closer_(closer) {}
  H5Id(H5Id&& other) noexcept;
  H5Id& operator=(H5Id&& other) noexcept;
  H5Id(const H5Id&) = delete;
  H5Id& operator=(const H5Id&) = delete;
  ~H5Id();

  hid_t get() const { return id_; }

 private:
  hid_t id_ = H5I_INVALID_HID;
  Closer closer_ = nullptr;
};

using AttributeValue = std::variant<int64_t, double, std::string>;

struct Attribute {
  std::string name;
  AttributeValue value;
};

// An HDF5 file opened for reading.
class H5Reader {
 public:
  explicit H5Reader(const std::filesystem::path& path);

  const std::filesystem::path& path() const { return path_; }
  bool has_dataset(const std::string& name) const;
  // Shape of a dataset (any rank).
  std::vector<hsize_t> shape(const std::string& name) const;
  // A 2-D float32 or float64 dataset, converted to float32.
  Matrix read_matrix(const std::string& name) const;
  // A 2-D integer dataset, converted to int32.
  MatrixI read_matrix_i32(const std::string& name) const;
  // A 2-D float32 or float64 dataset, converted to float64.
  MatrixD read_matrix_d(const std::string& name) const;
  // A 1-D integer dataset, converted to int32.
  VectorI read_vector_i32(const std::string& name) const;
  // A 1-D integer dataset, converted to int64.
  std::vector<int64_t> read_vector_i64(const std::string& name) const;
  // An attribute of the root group, or of the group or dataset at `object`.
  AttributeValue read_attribute(const std::string& name) const;
  AttributeValue read_attribute(const std::string& object, const std::string& name) const;
  bool has_attribute(const std::string& object, const std::string& name) const;

 private:
  H5Id open_dataset(const std::string& name) const;
  void require_rank(const std::string& name, const std::vector<hsize_t>& dims, size_t rank) const;

  std::filesystem::path path_;
  H5Id file_;
};

// An HDF5 file written under a temporary name in the destination folder and renamed to
// its final path by commit(). If the writer is destroyed before commit(), the temporary
// file is removed, so a partial file never appears under the final name.
class H5Writer {
 public:
  explicit H5Writer(const std::filesystem::path& final_path);
  ~H5Writer();
  H5Writer(const H5Writer&) = delete;
  H5Writer& operator=(const H5Writer&) = delete;

  // Dataset names may contain '/': missing intermediate groups are created.
  void write_matrix(const std::string& name, const Matrix& m);
  void write_matrix(const std::string& name, const MatrixI& m);
  // A float64 matrix stored in chunks of chunk_rows full rows (0: contiguous), so a reader
  // of a row range touches only the chunks it needs.
  void write_matrix(const std::string& name, const MatrixD& m, hsize_t chunk_rows = 0);
  void write_vector(const std::string& name, const VectorI& v);
  void write_vector(const std::string& name, const std::vector<int64_t>& v);
  // An attribute of the root group, or of the group or dataset at `object`.
  void write_attribute(const Attribute& attribute);
  void write_attribute(const std::string& object, const Attribute& attribute);
  // Flushes and closes the file, then renames it to the final path.
  void commit();

 private:
  void write_raw(const std::string& name, hid_t memory_type, const std::vector<hsize_t>& dims,
                 const void* data, hsize_t chunk_rows = 0);

  std::filesystem::path final_path_;
  std::filesystem::path temporary_path_;
  H5Id file_;
  bool committed_ = false;
};

}  // namespace magrq::store
