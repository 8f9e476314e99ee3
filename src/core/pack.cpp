#include "core/pack.hpp"

#include <bit>
#include <cstdint>

#include "core/error.hpp"

namespace magrq {

namespace {

void require_supported_bits(int bits) {
  if (bits != 2 && bits != 3 && bits != 4 && bits != 8) {
    throw ConfigError(detail::concat("invalid bits ", bits, " for packing: expected 2, 3, 4 or 8"));
  }
}

// Values per packing unit and words per unit: 32 values in 3 words for 3 bits,
// 32 / bits values in 1 word otherwise.
Index values_per_unit(int bits) { return bits == 3 ? 32 : 32 / bits; }
Index words_per_unit(int bits) { return bits == 3 ? 3 : 1; }

// Checks that `values` can be packed along `dimension` ("rows" or "columns"), whose
// length is `length`.
void require_packable(const MatrixI& values, Index length, const char* dimension, int bits) {
  require_supported_bits(bits);
  const Index unit = values_per_unit(bits);
  if (length % unit != 0) {
    throw DataError(detail::concat("cannot pack a ", values.rows(), " x ", values.cols(),
                                   " matrix at ", bits, " bits along its ", dimension, ": ", length,
                                   " ", dimension, " is not a multiple of ", unit));
  }
  const int32_t limit = int32_t{1} << bits;
  for (Index r = 0; r < values.rows(); ++r) {
    for (Index c = 0; c < values.cols(); ++c) {
      if (values(r, c) < 0 || values(r, c) >= limit) {
        throw DataError(detail::concat("cannot pack value ", values(r, c), " at [", r, ", ", c,
                                       "] of a ", values.rows(), " x ", values.cols(),
                                       " matrix at ", bits, " bits: expected 0..", limit - 1));
      }
    }
  }
}

void require_unpackable(const MatrixI& packed, Index length, const char* dimension, int bits) {
  require_supported_bits(bits);
  if (length % words_per_unit(bits) != 0) {
    throw DataError(detail::concat("cannot unpack a ", packed.rows(), " x ", packed.cols(),
                                   " matrix of words at ", bits, " bits along its ", dimension,
                                   ": ", length, " ", dimension, " is not a multiple of ",
                                   words_per_unit(bits)));
  }
}

// Packs one unit of values (32 / bits, or 32 for 3 bits) of column c into its words.
// Value j occupies stream bits [j * bits, (j + 1) * bits), which may straddle two words.
void pack_unit(const MatrixI& values, Index first_value, Index c, int bits, MatrixI& packed,
               Index first_word) {
  const uint32_t mask = (uint32_t{1} << bits) - 1;
  uint32_t words[3] = {0, 0, 0};
  for (Index j = 0; j < values_per_unit(bits); ++j) {
    const uint32_t field = static_cast<uint32_t>(values(first_value + j, c)) & mask;
    const Index bit = j * bits;
    const Index word = bit / 32;
    const Index offset = bit % 32;
    words[word] |= field << offset;
    if (offset + bits > 32) {
      words[word + 1] |= field >> (32 - offset);
    }
  }
  for (Index w = 0; w < words_per_unit(bits); ++w) {
    packed(first_word + w, c) = std::bit_cast<int32_t>(words[w]);
  }
}

void unpack_unit(const MatrixI& packed, Index first_word, Index c, int bits, MatrixI& values,
                 Index first_value) {
  const uint32_t mask = (uint32_t{1} << bits) - 1;
  uint32_t words[3] = {0, 0, 0};
  for (Index w = 0; w < words_per_unit(bits); ++w) {
    words[w] = std::bit_cast<uint32_t>(packed(first_word + w, c));
  }
  for (Index j = 0; j < values_per_unit(bits); ++j) {
    const Index bit = j * bits;
    const Index word = bit / 32;
    const Index offset = bit % 32;
    uint32_t field = words[word] >> offset;
    if (offset + bits > 32) {
      field |= words[word + 1] << (32 - offset);
    }
    values(first_value + j, c) = static_cast<int32_t>(field & mask);
  }
}

// Packs along the rows of a matrix that has passed require_packable.
MatrixI pack_checked_rows(const MatrixI& values, int bits) {
  const Index units = values.rows() / values_per_unit(bits);
  MatrixI packed(units * words_per_unit(bits), values.cols());
  for (Index u = 0; u < units; ++u) {
    for (Index c = 0; c < values.cols(); ++c) {
      pack_unit(values, u * values_per_unit(bits), c, bits, packed, u * words_per_unit(bits));
    }
  }
  return packed;
}

MatrixI unpack_checked_rows(const MatrixI& packed, int bits) {
  const Index units = packed.rows() / words_per_unit(bits);
  MatrixI values(units * values_per_unit(bits), packed.cols());
  for (Index u = 0; u < units; ++u) {
    for (Index c = 0; c < packed.cols(); ++c) {
      unpack_unit(packed, u * words_per_unit(bits), c, bits, values, u * values_per_unit(bits));
    }
  }
  return values;
}

}  // namespace

MatrixI pack_rows(const MatrixI& values, int bits) {
  require_packable(values, values.rows(), "rows", bits);
  return pack_checked_rows(values, bits);
}

MatrixI unpack_rows(const MatrixI& packed, int bits) {
  require_unpackable(packed, packed.rows(), "rows", bits);
  return unpack_checked_rows(packed, bits);
}

MatrixI pack_columns(const MatrixI& values, int bits) {
  require_packable(values, values.cols(), "columns", bits);
  return pack_checked_rows(values.transpose(), bits).transpose();
}

MatrixI unpack_columns(const MatrixI& packed, int bits) {
  require_unpackable(packed, packed.cols(), "columns", bits);
  return unpack_checked_rows(packed.transpose(), bits).transpose();
}

}  // namespace magrq
