// Fingerprints: named parts (hashes and settings) that decide whether a stored artefact,
// such as a Hessian store or a run journal, belongs to the current run.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace magrq::store {

// 128-bit XXH3 hash of bytes, as 32 lowercase hex digits. Not cryptographic: it detects
// accidental change (another file, another version), not tampering.
std::string content_hash(std::string_view bytes);

// content_hash of a whole file, read in chunks. Throws DataError if it cannot be read.
std::string file_hash(const std::filesystem::path& path);

class Fingerprint {
 public:
  // Adds or replaces a part; parts keep the order in which they were first added.
  void set(const std::string& name, const std::string& value);
  std::optional<std::string> get(const std::string& name) const;
  const std::vector<std::pair<std::string, std::string>>& parts() const { return parts_; }

  // A one-line JSON object of the parts, used as the stored form.
  std::string to_json() const;
  static Fingerprint from_json(std::string_view json, const std::string& where);

  // A sentence naming the first part that differs between this (stored) fingerprint and
  // the expected one with both values, or nothing when they are equal.
  std::optional<std::string> describe_difference(const Fingerprint& expected) const;

 private:
  std::vector<std::pair<std::string, std::string>> parts_;
};

}  // namespace magrq::store
