#include "store/h5.hpp"

#include <gtest/gtest.h>

#include <fstream>

#include "common/test_data.hpp"
#include "core/error.hpp"

namespace magrq::store {
namespace {

TEST(H5, MatricesAndAttributesRoundTrip) {
  const auto dir = testing::scratch_dir("h5_round_trip");
  const auto path = dir / "file.h5";
  const Matrix f = Matrix::Random(3, 5);
  MatrixD d = MatrixD::Random(70, 4);
  MatrixI i = MatrixI::Constant(2, 2, -7);
  {
    H5Writer writer(path);
    writer.write_matrix("f", f);
    writer.write_matrix("group/inner/d", d, 16);
    writer.write_matrix("i", i);
    writer.write_vector("v", std::vector<int64_t>{1, -2, 3});
    writer.write_attribute({"count", int64_t{42}});
    writer.write_attribute({"ratio", 0.25});
    writer.write_attribute({"name", std::string("magrq")});
    writer.write_attribute("group/inner/d", {"tokens", int64_t{9}});
    writer.commit();
  }
  const H5Reader reader(path);
  EXPECT_EQ(reader.read_matrix("f"), f);
  EXPECT_EQ(reader.read_matrix_d("group/inner/d"), d);
  EXPECT_EQ(reader.read_matrix_i32("i"), i);
  EXPECT_EQ(reader.read_vector_i64("v"), (std::vector<int64_t>{1, -2, 3}));
  EXPECT_EQ(std::get<int64_t>(reader.read_attribute("count")), 42);
  EXPECT_EQ(std::get<double>(reader.read_attribute("ratio")), 0.25);
  EXPECT_EQ(std::get<std::string>(reader.read_attribute("name")), "magrq");
  EXPECT_EQ(std::get<int64_t>(reader.read_attribute("group/inner/d", "tokens")), 9);
  EXPECT_FALSE(reader.has_attribute("group/inner/d", "absent"));
}

TEST(H5, UncommittedWriterLeavesNoFile) {
  const auto dir = testing::scratch_dir("h5_uncommitted");
  {
    H5Writer writer(dir / "partial.h5");
    writer.write_matrix("f", Matrix(Matrix::Ones(2, 2)));
  }
  EXPECT_TRUE(std::filesystem::is_empty(dir));
}

TEST(H5, MissingDatasetNamesFileAndDataset) {
  const auto dir = testing::scratch_dir("h5_missing");
  const auto path = dir / "file.h5";
  {
    H5Writer writer(path);
    writer.write_matrix("present", Matrix(Matrix::Ones(1, 1)));
    writer.commit();
  }
  const H5Reader reader(path);
  try {
    reader.read_matrix("absent");
    FAIL() << "expected DataError";
  } catch (const DataError& error) {
    EXPECT_NE(std::string(error.what()).find("absent"), std::string::npos);
    EXPECT_NE(std::string(error.what()).find(path.string()), std::string::npos);
  }
}

TEST(H5, WrongRankIsRejected) {
  const auto dir = testing::scratch_dir("h5_rank");
  const auto path = dir / "file.h5";
  {
    H5Writer writer(path);
    writer.write_vector("v", VectorI::Ones(4));
    writer.commit();
  }
  EXPECT_THROW(H5Reader(path).read_matrix("v"), DataError);
}

TEST(H5, TruncatedFileIsAnError) {
  const auto dir = testing::scratch_dir("h5_truncated");
  const auto path = dir / "file.h5";
  {
    H5Writer writer(path);
    writer.write_matrix("m", Matrix(Matrix::Random(64, 64)));
    writer.commit();
  }
  std::filesystem::resize_file(path, 1000);
  EXPECT_THROW(
      {
        const H5Reader reader(path);
        reader.read_matrix("m");
      },
      DataError);
}

TEST(H5, NonHdf5FileIsAnError) {
  const auto dir = testing::scratch_dir("h5_garbage");
  const auto path = dir / "file.h5";
  std::ofstream(path) << "not an HDF5 file";
  EXPECT_THROW(H5Reader{path}, DataError);
  EXPECT_THROW(H5Reader{dir / "absent.h5"}, DataError);
}

}  // namespace
}  // namespace magrq::store
