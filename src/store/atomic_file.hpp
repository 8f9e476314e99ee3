// Text files that appear under their final name only when complete.
#pragma once

#include <filesystem>
#include <string>

namespace magrq::store {

// Writes text to a temporary file beside path, fsyncs it and renames it to path.
// Throws DataError naming the file when writing fails.
void write_text_atomically(const std::filesystem::path& path, const std::string& text);

// Flushes a file's data to the disk (fsync); a file that cannot be opened is left alone.
void sync_file(const std::filesystem::path& path);

}  // namespace magrq::store
