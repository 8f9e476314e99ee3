#include "store/fingerprint.hpp"

#include <xxhash.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.hpp"

namespace magrq::store {

namespace {

std::string hex128(const XXH128_hash_t& hash) {
  std::array<char, 33> text{};
  std::snprintf(text.data(), text.size(), "%016llx%016llx",
                static_cast<unsigned long long>(hash.high64),
                static_cast<unsigned long long>(hash.low64));
  return std::string(text.data(), 32);
}

}  // namespace

std::string content_hash(std::string_view bytes) {
  return hex128(XXH3_128bits(bytes.data(), bytes.size()));
}

std::string file_hash(const std::filesystem::path& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    throw DataError("cannot read " + path.string() + " to compute its hash");
  }
  XXH3_state_t* state = XXH3_createState();
  XXH3_128bits_reset(state);
  std::vector<char> buffer(1 << 20);
  while (file) {
    file.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    XXH3_128bits_update(state, buffer.data(), static_cast<size_t>(file.gcount()));
  }
  const bool failed = file.bad();
  const XXH128_hash_t hash = XXH3_128bits_digest(state);
  XXH3_freeState(state);
  if (failed) {
    throw DataError("reading " + path.string() + " failed while computing its hash");
  }
  return hex128(hash);
}

void Fingerprint::set(const std::string& name, const std::string& value) {
  for (auto& [key, existing] : parts_) {
    if (key == name) {
      existing = value;
      return;
    }
  }
  parts_.emplace_back(name, value);
}

std::optional<std::string> Fingerprint::get(const std::string& name) const {
  for (const auto& [key, value] : parts_) {
    if (key == name) {
      return value;
    }
  }
  return std::nullopt;
}

std::string Fingerprint::to_json() const {
  // ordered_json keeps insertion order, so equal fingerprints give equal text.
  nlohmann::ordered_json object = nlohmann::ordered_json::object();
  for (const auto& [key, value] : parts_) {
    object[key] = value;
  }
  return object.dump();
}

Fingerprint Fingerprint::from_json(std::string_view json, const std::string& where) {
  const nlohmann::ordered_json object = nlohmann::ordered_json::parse(json, nullptr, false);
  if (!object.is_object()) {
    throw DataError(where + ": the fingerprint is not a JSON object: " + std::string(json));
  }
  Fingerprint fingerprint;
  for (const auto& [key, value] : object.items()) {
    if (!value.is_string()) {
      throw DataError(where + ": fingerprint part " + key + " is not a string");
    }
    fingerprint.set(key, value.get<std::string>());
  }
  return fingerprint;
}

std::optional<std::string> Fingerprint::describe_difference(const Fingerprint& expected) const {
  for (const auto& [key, wanted] : expected.parts()) {
    const auto stored = get(key);
    if (!stored) {
      return key + " is missing from the stored fingerprint (expected " + wanted + ")";
    }
    if (*stored != wanted) {
      return key + " differs: stored " + *stored + ", this run " + wanted;
    }
  }
  for (const auto& [key, stored] : parts_) {
    if (!expected.get(key)) {
      return key + " is stored (" + stored + ") but this run has no such part";
    }
  }
  return std::nullopt;
}

}  // namespace magrq::store
