// Typed access to the fields of tokenizer.json and tokenizer_config.json. Every failure
// is a DataError that names the file and the JSON path of the field.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>
#include <utility>

#include "core/error.hpp"

namespace magrq::model::detail {

// A position in a JSON file, for error messages: "tokenizer.json at decoder.decoders[2]".
class JsonPlace {
 public:
  JsonPlace(std::string file, std::string path) : file_(std::move(file)), path_(std::move(path)) {}

  JsonPlace child(std::string_view key) const {
    return {file_, path_.empty() ? std::string(key) : path_ + "." + std::string(key)};
  }
  JsonPlace item(std::size_t index) const {
    return {file_, path_ + "[" + std::to_string(index) + "]"};
  }
  std::string describe() const { return path_.empty() ? file_ : file_ + " at " + path_; }
  const std::string& file() const { return file_; }

 private:
  std::string file_;
  std::string path_;
};

inline const nlohmann::json& require_field(const nlohmann::json& node, std::string_view key,
                                           const JsonPlace& place) {
  if (!node.is_object()) {
    throw DataError(place.describe() + ": expected a JSON object, found " +
                    std::string(node.type_name()));
  }
  const auto found = node.find(key);
  if (found == node.end()) {
    throw DataError(place.describe() + ": the required key \"" + std::string(key) +
                    "\" is missing");
  }
  return *found;
}

inline std::string require_string(const nlohmann::json& node, std::string_view key,
                                  const JsonPlace& place) {
  const nlohmann::json& value = require_field(node, key, place);
  if (!value.is_string()) {
    throw DataError(place.child(key).describe() + ": expected a string, found " +
                    std::string(value.type_name()));
  }
  return value.get<std::string>();
}

// The boolean at key, or fallback when the key is absent or null.
inline bool optional_bool(const nlohmann::json& node, std::string_view key, bool fallback,
                          const JsonPlace& place) {
  const auto found = node.find(key);
  if (found == node.end() || found->is_null()) {
    return fallback;
  }
  if (!found->is_boolean()) {
    throw DataError(place.child(key).describe() + ": expected true or false, found " +
                    found->dump());
  }
  return found->get<bool>();
}

// The "type" of a component object (normalizer, pre-tokenizer, model, decoder, ...).
inline std::string component_type(const nlohmann::json& node, const JsonPlace& place) {
  return require_string(node, "type", place);
}

// The text of a {"String": ...} pattern; a {"Regex": ...} pattern or anything else is
// rejected, naming `component`.
inline std::string require_string_pattern(const nlohmann::json& node, const JsonPlace& place,
                                          std::string_view component) {
  const nlohmann::json& pattern = require_field(node, "pattern", place);
  if (pattern.is_object() && pattern.contains("String") && pattern["String"].is_string()) {
    return pattern["String"].get<std::string>();
  }
  throw DataError(place.child("pattern").describe() + ": " + std::string(component) +
                  " supports only a {\"String\": ...} pattern, found " + pattern.dump());
}

}  // namespace magrq::model::detail
