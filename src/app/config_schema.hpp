// Declare-once configuration keys: each key of an experiment file is declared once with
// its field, documentation and range check. Parsing, strict key checking, the echo of the
// resolved configuration and the reference table in docs/config.md all derive from it.
#pragma once

#include <yaml-cpp/yaml.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace magrq::app {

// Returns an error text (what was expected) for an invalid value, or nothing.
template <typename T>
using Check = std::function<std::optional<std::string>(const T&)>;

template <typename T>
Check<T> in_range(T low, T high) {
  return [low, high](const T& value) -> std::optional<std::string> {
    if (value < low || value > high) {
      return "expected a value from " + nlohmann::json(low).dump() + " to " +
             nlohmann::json(high).dump();
    }
    return std::nullopt;
  };
}

Check<std::string> one_of(std::vector<std::string> choices);

// Edit distance, used to suggest the nearest valid key for a misspelt one.
size_t edit_distance(const std::string& a, const std::string& b);

class ConfigSchema {
 public:
  using Field = std::variant<int*, int64_t*, double*, bool*, std::string*, std::vector<std::string>*,
                             std::optional<double>*>;

  void add(const std::string& key, int* field, std::string doc, Check<int> check = {});
  void add(const std::string& key, int64_t* field, std::string doc, Check<int64_t> check = {});
  void add(const std::string& key, double* field, std::string doc, Check<double> check = {});
  void add(const std::string& key, bool* field, std::string doc);
  void add(const std::string& key, std::string* field, std::string doc,
           Check<std::string> check = {});
  void add(const std::string& key, std::vector<std::string>* field, std::string doc);
  // A number, or absent / null / "auto" for a default chosen later.
  void add(const std::string& key, std::optional<double>* field, std::string doc,
           Check<double> check = {});
  // Declares a key whose value the caller parses itself (for example a list of maps).
  void add_custom(const std::string& key, std::string doc,
                  std::function<void(const YAML::Node&, const std::string& where)> parse,
                  std::function<nlohmann::ordered_json()> print);

  // Reads every declared key present in root. Throws ConfigError naming the file and key
  // for an unknown key (with the nearest valid key), a value of the wrong type, or a value
  // outside its range.
  void parse(const YAML::Node& root, const std::string& file) const;
  // Checks every declared key's current value (defaults included).
  void validate(const std::string& where) const;
  // The resolved configuration as nested JSON (sections as objects).
  nlohmann::ordered_json resolved() const;
  // One Markdown table row per key: key, default, meaning.
  std::string markdown_reference() const;
  // Whether key is a declared key (not a section).
  bool has_key(const std::string& key) const { return find(key) != nullptr; }
  // Whether name is a section: the part before a dot of some declared key.
  bool is_section(const std::string& name) const;
  // The declared key or section nearest to a misspelt one, when one is close enough to
  // suggest (edit distance at most max(3, length / 3)).
  std::optional<std::string> nearest_key(const std::string& key) const;

 private:
  struct Entry {
    std::string key;
    std::string doc;
    std::optional<Field> field;
    std::function<std::optional<std::string>()> check;
    std::function<void(const YAML::Node&, const std::string& where)> custom_parse;
    std::function<nlohmann::ordered_json()> custom_print;
  };
  template <typename T>
  void add_typed(const std::string& key, T* field, std::string doc, Check<T> check);
  const Entry* find(const std::string& key) const;
  void reject_unknown(const std::string& key, const std::string& file) const;

  std::vector<Entry> entries_;
};

}  // namespace magrq::app
