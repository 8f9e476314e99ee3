#include "app/config_schema.hpp"

#include <algorithm>
#include <numeric>

#include "core/error.hpp"

namespace magrq::app {

namespace {

std::string location(const YAML::Node& node, const std::string& file, const std::string& key) {
  std::string text = file;
  if (node.Mark().line >= 0) {
    text += ":" + std::to_string(node.Mark().line + 1);
  }
  return text + ": key " + key;
}

std::string scalar_text(const YAML::Node& node) {
  if (node.IsScalar()) {
    return "'" + node.Scalar() + "'";
  }
  if (node.IsSequence()) {
    return "a list";
  }
  if (node.IsMap()) {
    return "a map";
  }
  return "null";
}

template <typename T>
T convert(const YAML::Node& node, const std::string& where, const char* expected) {
  if (!node.IsScalar()) {
    throw ConfigError(where + ": expected " + expected + ", found " + scalar_text(node));
  }
  try {
    return node.as<T>();
  } catch (const YAML::BadConversion&) {
    throw ConfigError(where + ": expected " + expected + ", found " + scalar_text(node));
  }
}

template <typename T>
const char* type_name() {
  if constexpr (std::is_same_v<T, bool>) {
    return "true or false";
  } else if constexpr (std::is_integral_v<T>) {
    return "an integer";
  } else if constexpr (std::is_floating_point_v<T>) {
    return "a number";
  } else {
    return "a string";
  }
}

}  // namespace

Check<std::string> one_of(std::vector<std::string> choices) {
  return [choices](const std::string& value) -> std::optional<std::string> {
    if (std::find(choices.begin(), choices.end(), value) != choices.end()) {
      return std::nullopt;
    }
    std::string text = "expected one of";
    for (size_t i = 0; i < choices.size(); ++i) {
      text += (i ? ", " : " ") + choices[i];
    }
    return text;
  };
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  std::iota(row.begin(), row.end(), size_t{0});
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

template <typename T>
void ConfigSchema::add_typed(const std::string& key, T* field, std::string doc, Check<T> check) {
  Entry entry{key, std::move(doc), Field{field}, {}, {}, {}};
  if (check) {
    entry.check = [field, check] { return check(*field); };
  }
  entries_.push_back(std::move(entry));
}

void ConfigSchema::add(const std::string& key, int* field, std::string doc, Check<int> check) {
  add_typed(key, field, std::move(doc), std::move(check));
}
void ConfigSchema::add(const std::string& key, int64_t* field, std::string doc,
                       Check<int64_t> check) {
  add_typed(key, field, std::move(doc), std::move(check));
}
void ConfigSchema::add(const std::string& key, double* field, std::string doc,
                       Check<double> check) {
  add_typed(key, field, std::move(doc), std::move(check));
}
void ConfigSchema::add(const std::string& key, bool* field, std::string doc) {
  add_typed<bool>(key, field, std::move(doc), {});
}
void ConfigSchema::add(const std::string& key, std::string* field, std::string doc,
                       Check<std::string> check) {
  add_typed(key, field, std::move(doc), std::move(check));
}
void ConfigSchema::add(const std::string& key, std::vector<std::string>* field, std::string doc) {
  add_typed<std::vector<std::string>>(key, field, std::move(doc), {});
}
void ConfigSchema::add(const std::string& key, std::optional<double>* field, std::string doc,
                       Check<double> check) {
  Entry entry{key, std::move(doc), Field{field}, {}, {}, {}};
  if (check) {
    entry.check = [field, check]() -> std::optional<std::string> {
      return field->has_value() ? check(**field) : std::nullopt;
    };
  }
  entries_.push_back(std::move(entry));
}

void ConfigSchema::add_custom(const std::string& key, std::string doc,
                              std::function<void(const YAML::Node&, const std::string&)> parse,
                              std::function<nlohmann::ordered_json()> print) {
  entries_.push_back(Entry{key, std::move(doc), std::nullopt, {}, std::move(parse), std::move(print)});
}

const ConfigSchema::Entry* ConfigSchema::find(const std::string& key) const {
  for (const Entry& entry : entries_) {
    if (entry.key == key) {
      return &entry;
    }
  }
  return nullptr;
}

std::optional<std::string> ConfigSchema::nearest_key(const std::string& key) const {
  // Candidates are every key and every section name (the prefixes before a dot), so a
  // misspelt section is matched to a section.
  std::vector<std::string> candidates;
  for (const Entry& entry : entries_) {
    candidates.push_back(entry.key);
    for (size_t dot = entry.key.find('.'); dot != std::string::npos; dot = entry.key.find('.', dot + 1)) {
      candidates.push_back(entry.key.substr(0, dot));
    }
  }
  std::string best;
  size_t best_distance = std::string::npos;
  for (const std::string& candidate : candidates) {
    const size_t distance = edit_distance(key, candidate);
    if (distance < best_distance) {
      best_distance = distance;
      best = candidate;
    }
  }
  if (best.empty() || best_distance > std::max<size_t>(3, key.size() / 3)) {
    return std::nullopt;
  }
  return best;
}

bool ConfigSchema::is_section(const std::string& name) const {
  return std::any_of(entries_.begin(), entries_.end(),
                     [&](const Entry& e) { return e.key.rfind(name + ".", 0) == 0; });
}

void ConfigSchema::reject_unknown(const std::string& key, const std::string& file) const {
  std::string message = file + ": unknown key " + key;
  if (const auto suggestion = nearest_key(key)) {
    message += "; did you mean " + *suggestion + "?";
  } else {
    message += "; see docs/config.md for the valid keys";
  }
  throw ConfigError(message);
}

namespace {

// Reads one YAML value into a declared field.
struct FieldReader {
  const YAML::Node& node;
  const std::string& where;

  template <typename T>
  void operator()(T* field) const {
    *field = convert<T>(node, where, type_name<T>());
  }
  void operator()(std::vector<std::string>* field) const {
    if (node.IsScalar()) {
      *field = {node.Scalar()};
      return;
    }
    if (!node.IsSequence()) {
      throw ConfigError(where + ": expected a list of strings, found " + scalar_text(node));
    }
    field->clear();
    for (const YAML::Node& item : node) {
      field->push_back(convert<std::string>(item, where, "a string"));
    }
  }
  void operator()(std::optional<double>* field) const {
    if (node.IsNull() || (node.IsScalar() && node.Scalar() == "auto")) {
      field->reset();
      return;
    }
    *field = convert<double>(node, where, "a number or auto");
  }
};

}  // namespace

void ConfigSchema::parse(const YAML::Node& root, const std::string& file) const {
  if (!root.IsMap()) {
    throw ConfigError(file + ": expected a YAML map of sections at the top level");
  }
  std::function<void(const YAML::Node&, const std::string&)> walk =
      [&](const YAML::Node& map, const std::string& prefix) {
        for (const auto& item : map) {
          const std::string name = item.first.as<std::string>();
          const std::string key = prefix.empty() ? name : prefix + "." + name;
          const YAML::Node& value = item.second;
          const std::string where = location(value, file, key);
          if (const Entry* entry = find(key)) {
            if (entry->custom_parse) {
              entry->custom_parse(value, where);
            } else {
              std::visit(FieldReader{value, where}, *entry->field);
            }
            if (entry->check) {
              if (const auto problem = entry->check()) {
                throw ConfigError(where + ": invalid value " + scalar_text(value) + ": " + *problem);
              }
            }
            continue;
          }
          const bool section = is_section(key);
          if (section && value.IsMap()) {
            walk(value, key);
          } else if (section) {
            throw ConfigError(where + ": expected a map (a section), found " + scalar_text(value));
          } else {
            reject_unknown(key, file);
          }
        }
      };
  walk(root, "");
}

void ConfigSchema::validate(const std::string& where) const {
  for (const Entry& entry : entries_) {
    if (entry.check) {
      if (const auto problem = entry.check()) {
        throw ConfigError(where + ": key " + entry.key + ": " + *problem);
      }
    }
  }
}

namespace {

struct FieldPrinter {
  template <typename T>
  nlohmann::ordered_json operator()(T* field) const {
    return *field;
  }
  nlohmann::ordered_json operator()(std::optional<double>* field) const {
    return field->has_value() ? nlohmann::ordered_json(**field) : nlohmann::ordered_json("auto");
  }
};

}  // namespace

nlohmann::ordered_json ConfigSchema::resolved() const {
  nlohmann::ordered_json root = nlohmann::ordered_json::object();
  for (const Entry& entry : entries_) {
    nlohmann::ordered_json* node = &root;
    size_t start = 0;
    for (size_t dot = entry.key.find('.'); dot != std::string::npos;
         dot = entry.key.find('.', start)) {
      node = &(*node)[entry.key.substr(start, dot - start)];
      start = dot + 1;
    }
    (*node)[entry.key.substr(start)] =
        entry.custom_print ? entry.custom_print() : std::visit(FieldPrinter{}, *entry.field);
  }
  return root;
}

std::string ConfigSchema::markdown_reference() const {
  std::string text = "| key | default | meaning |\n| --- | --- | --- |\n";
  for (const Entry& entry : entries_) {
    const nlohmann::ordered_json value =
        entry.custom_print ? entry.custom_print() : std::visit(FieldPrinter{}, *entry.field);
    text += "| `" + entry.key + "` | `" + value.dump() + "` | " + entry.doc + " |\n";
  }
  return text;
}

}  // namespace magrq::app
