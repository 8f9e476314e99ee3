#include "store/atomic_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <fstream>

#include "core/error.hpp"

namespace magrq::store {

void sync_file(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

void write_text_atomically(const std::filesystem::path& path, const std::string& text) {
  const auto temporary = path.string() + ".tmp-" + std::to_string(::getpid());
  {
    std::ofstream stream(temporary, std::ios::trunc);
    stream << text;
    if (!stream) {
      throw DataError("writing " + temporary + " failed (is the folder writable and the disk not full?)");
    }
  }
  sync_file(temporary);
  std::filesystem::rename(temporary, path);
}

}  // namespace magrq::store
