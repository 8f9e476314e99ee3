// GPTQ bit packing of integer codes into int32 words, and its exact inverse.
//
// For 2, 4 and 8 bits each word contains pf = 32 / bits values, the first one in the
// lowest bits, so word r of a column contains values r * pf + j at bit offset j * bits.
// For 3 bits each run of 32 values forms a little-endian 96-bit stream in 3
// consecutive words, with value j at stream bits [3j, 3j + 3). Value 10 straddles words
// 0 and 1, and value 21 straddles words 1 and 2. Words are int32 bit patterns (the top
// bit may make a word negative).
//
// Checkpoint layout: qweight = pack_rows(codes^T) has shape [in * bits / 32, out], and
// qzeros = pack_columns(zeros) has shape [groups, out * bits / 32].
// NOTE: the original AutoGPTQ checkpoint format ("gptq", v1) stores zero - 1 in qzeros,
// while "gptq_v2" stores the zero itself. These functions pack the values they are
// given, so a v1 writer must subtract 1 first and decide how to store a zero of 0.
#pragma once

#include "core/types.hpp"

namespace magrq {

// Packs along the first dimension: n x cols values become n * bits / 32 x cols words.
// Throws ConfigError for bits other than 2, 3, 4 or 8. Throws DataError, naming the
// shape or the value and its position, when n is not a multiple of 32 / bits (of 32
// for 3 bits) or a value lies outside [0, 2^bits).
MatrixI pack_rows(const MatrixI& values, int bits);

// Inverse of pack_rows: words x cols words become words * 32 / bits x cols values.
// Throws ConfigError for unsupported bits and DataError when a 3-bit input does not
// have a multiple of 3 rows.
MatrixI unpack_rows(const MatrixI& packed, int bits);

// Packs along the second dimension: rows x n values become rows x n * bits / 32 words,
// with the same layout as pack_rows applied to each row. Same errors as pack_rows.
MatrixI pack_columns(const MatrixI& values, int bits);

// Inverse of pack_columns.
MatrixI unpack_columns(const MatrixI& packed, int bits);

}  // namespace magrq
