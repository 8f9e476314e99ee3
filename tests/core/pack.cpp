// Tests of GPTQ bit packing: golden words, round trips and rejected input.
#include "core/pack.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <bit>
#include <cstdint>
#include <random>

#include "core/error.hpp"

namespace magrq {
namespace {

using ::testing::HasSubstr;

int32_t word(uint32_t bits) { return std::bit_cast<int32_t>(bits); }

MatrixI column_of(std::initializer_list<int32_t> values) {
  MatrixI m(static_cast<Index>(values.size()), 1);
  Index i = 0;
  for (const int32_t v : values) {
    m(i++, 0) = v;
  }
  return m;
}

MatrixI random_codes(Index rows, Index cols, int bits, uint32_t seed) {
  std::mt19937 engine(seed);
  MatrixI m(rows, cols);
  for (Index r = 0; r < rows; ++r) {
    for (Index c = 0; c < cols; ++c) {
      m(r, c) = static_cast<int32_t>(engine() % (uint32_t{1} << bits));
    }
  }
  // The extreme codes must survive too.
  m(0, 0) = 0;
  m(rows - 1, cols - 1) = (1 << bits) - 1;
  return m;
}

TEST(Pack, FourBitGoldenWord) {
  const MatrixI packed = pack_rows(column_of({0, 1, 2, 3, 4, 5, 6, 7}), 4);
  ASSERT_EQ(packed.rows(), 1);
  ASSERT_EQ(packed.cols(), 1);
  EXPECT_EQ(packed(0, 0), word(0x76543210u));
}

TEST(Pack, TwoAndEightBitGoldenWords) {
  // 2 bits: 0, 1, 2, 3 at offsets 0, 2, 4, 6 give the byte 0b11100100 = 0xE4.
  const MatrixI two = pack_rows(column_of({0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3}), 2);
  EXPECT_EQ(two(0, 0), word(0xE4E4E4E4u));
  const MatrixI eight = pack_rows(column_of({0x01, 0x02, 0x03, 0xFE}), 8);
  EXPECT_EQ(eight(0, 0), word(0xFE030201u));
}

TEST(Pack, ThreeBitGoldenWords) {
  // Values j % 8 for j = 0..31. Eight values fill 24 bits: octal 76543210 = 0xFAC688.
  // The 96-bit stream is that chunk four times, at bits 0, 24, 48 and 72:
  //   word 0 = bits 0..31:  chunk, then the low 8 bits of the next chunk (0x88)
  //          = 0x88FAC688
  //   word 1 = bits 32..63: chunk bits 8..23 (0xFAC6), then chunk bits 0..15 (0xC688)
  //          = 0xC688FAC6
  //   word 2 = bits 64..95: chunk bits 16..23 (0xFA), then the whole chunk
  //          = 0xFAC688FA
  // Value 10 (= 2) straddles words 0 and 1, value 21 (= 5) words 1 and 2.
  MatrixI values(32, 1);
  for (Index j = 0; j < 32; ++j) {
    values(j, 0) = static_cast<int32_t>(j % 8);
  }
  const MatrixI packed = pack_rows(values, 3);
  ASSERT_EQ(packed.rows(), 3);
  EXPECT_EQ(packed(0, 0), word(0x88FAC688u));
  EXPECT_EQ(packed(1, 0), word(0xC688FAC6u));
  EXPECT_EQ(packed(2, 0), word(0xFAC688FAu));
  EXPECT_EQ(unpack_rows(packed, 3), values);
}

TEST(Pack, ThreeBitStraddlingValues) {
  // Only value 10 set to 7: bits 30, 31 of word 0 and bit 0 of word 1.
  MatrixI values = MatrixI::Zero(32, 1);
  values(10, 0) = 7;
  MatrixI packed = pack_rows(values, 3);
  EXPECT_EQ(packed(0, 0), word(0xC0000000u));
  EXPECT_EQ(packed(1, 0), word(0x00000001u));
  EXPECT_EQ(packed(2, 0), 0);
  // Only value 21 set to 7: bit 31 of word 1 and bits 0, 1 of word 2.
  values.setZero();
  values(21, 0) = 7;
  packed = pack_rows(values, 3);
  EXPECT_EQ(packed(0, 0), 0);
  EXPECT_EQ(packed(1, 0), word(0x80000000u));
  EXPECT_EQ(packed(2, 0), word(0x00000003u));
}

TEST(Pack, ColumnsPackAlongSecondDimension) {
  MatrixI zeros(1, 8);
  zeros << 0, 1, 2, 3, 4, 5, 6, 7;
  const MatrixI packed = pack_columns(zeros, 4);
  ASSERT_EQ(packed.rows(), 1);
  ASSERT_EQ(packed.cols(), 1);
  EXPECT_EQ(packed(0, 0), word(0x76543210u));
}

TEST(Pack, RoundTripEveryBitWidth) {
  struct Shape {
    Index out;
    Index in;
    Index group_size;
  };
  const Shape shapes[] = {
      {32, 32, -1}, {32, 32, 128}, {96, 256, -1}, {96, 256, 128}, {64, 384, 128}};
  uint32_t seed = 1;
  for (const int bits : {2, 3, 4, 8}) {
    for (const Shape& shape : shapes) {
      const std::string label = "bits " + std::to_string(bits) + " out " +
                                std::to_string(shape.out) + " in " + std::to_string(shape.in) +
                                " group_size " + std::to_string(shape.group_size);
      const MatrixI codes = random_codes(shape.out, shape.in, bits, seed++);
      const MatrixI qweight = pack_rows(codes.transpose(), bits);
      EXPECT_EQ(qweight.rows(), shape.in * bits / 32) << label;
      EXPECT_EQ(qweight.cols(), shape.out) << label;
      EXPECT_EQ(MatrixI(unpack_rows(qweight, bits).transpose()), codes) << label;

      const Index groups =
          shape.group_size > 0 ? (shape.in + shape.group_size - 1) / shape.group_size : 1;
      const MatrixI zeros = random_codes(groups, shape.out, bits, seed++);
      const MatrixI qzeros = pack_columns(zeros, bits);
      EXPECT_EQ(qzeros.rows(), groups) << label;
      EXPECT_EQ(qzeros.cols(), shape.out * bits / 32) << label;
      EXPECT_EQ(unpack_columns(qzeros, bits), zeros) << label;
    }
  }
}

TEST(Pack, UnpackInvertsEveryWordPattern) {
  // Words with every bit pattern class, including negative int32 values.
  MatrixI words(6, 2);
  words << word(0xFFFFFFFFu), 0, word(0x80000000u), 1, word(0xDEADBEEFu), word(0x12345678u),
      word(0x7FFFFFFFu), word(0xAAAAAAAAu), word(0x55555555u), word(0xF0F0F0F0u), word(0x0F0F0F0Fu),
      word(0xCAFEBABEu);
  for (const int bits : {2, 3, 4, 8}) {
    EXPECT_EQ(pack_rows(unpack_rows(words, bits), bits), words) << "bits " << bits;
    EXPECT_EQ(pack_columns(unpack_columns(words.transpose(), bits), bits),
              MatrixI(words.transpose()))
        << "bits " << bits;
  }
}

TEST(Pack, RejectsOutOfRangeValues) {
  MatrixI values = MatrixI::Zero(8, 2);
  values(3, 1) = 16;
  try {
    pack_rows(values, 4);
    FAIL() << "expected DataError";
  } catch (const DataError& error) {
    EXPECT_THAT(error.what(), HasSubstr("value 16 at [3, 1]"));
    EXPECT_THAT(error.what(), HasSubstr("0..15"));
  }
  values(3, 1) = -1;
  EXPECT_THROW(pack_rows(values, 4), DataError);
  MatrixI row = MatrixI::Zero(1, 16);
  row(0, 5) = 4;
  EXPECT_THROW(pack_columns(row, 2), DataError);
}

TEST(Pack, RejectsIndivisibleShapes) {
  try {
    pack_rows(MatrixI::Zero(30, 4), 3);
    FAIL() << "expected DataError";
  } catch (const DataError& error) {
    EXPECT_THAT(error.what(), HasSubstr("30 x 4"));
    EXPECT_THAT(error.what(), HasSubstr("multiple of 32"));
  }
  EXPECT_THROW(pack_rows(MatrixI::Zero(12, 4), 4), DataError);
  EXPECT_THROW(pack_columns(MatrixI::Zero(2, 6), 8), DataError);
  EXPECT_THROW(unpack_rows(MatrixI::Zero(4, 2), 3), DataError);
  EXPECT_THROW(unpack_columns(MatrixI::Zero(2, 5), 3), DataError);
}

TEST(Pack, RejectsUnsupportedBits) {
  EXPECT_THROW(pack_rows(MatrixI::Zero(32, 1), 5), ConfigError);
  EXPECT_THROW(unpack_rows(MatrixI::Zero(1, 1), 16), ConfigError);
}

}  // namespace
}  // namespace magrq
