#include "app/sweep.hpp"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <map>
#include <sstream>

#include "core/error.hpp"

namespace magrq::app {

namespace {

// Sections whose keys enter the Hessian store's fingerprint in independent mode
// (store_fingerprint in run_settings.cpp), or choose the store itself.
constexpr const char* kStoreSections[] = {"model", "calibration", "store"};

std::string line_of(const YAML::Node& node, const std::string& file) {
  if (node.Mark().line >= 0) {
    return file + ":" + std::to_string(node.Mark().line + 1);
  }
  return file;
}

std::string section_of(const std::string& key) { return key.substr(0, key.find('.')); }

std::string leaf_of(const std::string& key) { return key.substr(key.rfind('.') + 1); }

// Rejects a swept key that is not a declared key, or that the sweep must not change.
void check_swept_key(const ConfigSchema& schema, const std::string& key, const std::string& where) {
  const std::string prefix = where + ": sweep key " + key + ": ";
  for (const char* section : kStoreSections) {
    if (section_of(key) == section) {
      throw ConfigError(prefix + "the model, calibration and store sections decide the Hessian store's "
                        "fingerprint, and all points of a sweep share one store; write one experiment "
                        "file per calibration instead");
    }
  }
  if (key == "name") {
    throw ConfigError(prefix + "the sweep names each point <name>-<point name>; set name in the base experiment");
  }
  if (key == "output.dir") {
    throw ConfigError(prefix + "each point writes to <output.dir>/<point name>; set output.dir in the base "
                      "experiment");
  }
  if (key == "sweep" || key == "points") {
    throw ConfigError(prefix + "expected an experiment key such as quantizer.bits");
  }
  if (schema.has_key(key)) {
    return;
  }
  if (schema.is_section(key)) {
    throw ConfigError(prefix + "is a section; write each swept key in full, for example " + key + ".<key>");
  }
  const auto suggestion = schema.nearest_key(key);
  throw ConfigError(prefix + "unknown key" +
                    (suggestion ? "; did you mean " + *suggestion + "?" : "; see docs/config.md for the valid keys"));
}

// Sets a dotted key in a YAML tree, creating the sections it needs. Recursion keeps every
// YAML::Node handle fresh: assigning to an existing handle would rebind the node it refers to.
void set_key(YAML::Node map, const std::vector<std::string>& parts, size_t part, const YAML::Node& value,
             const std::string& where) {
  if (part + 1 == parts.size()) {
    map[parts[part]] = value;
    return;
  }
  if (!map[parts[part]] || map[parts[part]].IsNull()) {
    map[parts[part]] = YAML::Node(YAML::NodeType::Map);
  }
  if (!map[parts[part]].IsMap()) {
    throw ConfigError(where + ": key " + parts[part] + " of the base experiment is not a section (a map), so the "
                      "sweep cannot set a key in it");
  }
  set_key(map[parts[part]], parts, part + 1, value, where);
}

std::vector<std::string> split_key(const std::string& key) {
  std::vector<std::string> parts;
  std::stringstream stream(key);
  for (std::string part; std::getline(stream, part, '.');) {
    parts.push_back(part);
  }
  return parts;
}

const nlohmann::ordered_json* find_value(const nlohmann::ordered_json& resolved, const std::string& key) {
  const nlohmann::ordered_json* node = &resolved;
  for (const std::string& part : split_key(key)) {
    if (!node->is_object() || !node->contains(part)) {
      return nullptr;
    }
    node = &(*node)[part];
  }
  return node;
}

bool contains_map(const YAML::Node& node) {
  if (node.IsMap()) {
    return true;
  }
  if (node.IsSequence()) {
    return std::any_of(node.begin(), node.end(), [](const YAML::Node& item) { return contains_map(item); });
  }
  return false;
}

std::string flatten(const YAML::Node& node) {
  if (!node.IsSequence()) {
    return node.IsScalar() ? node.Scalar() : std::string("null");
  }
  std::string text;
  for (const YAML::Node& item : node) {
    text += (text.empty() ? "" : "_") + flatten(item);
  }
  return text;
}

// Replaces every character that is not safe in a folder name on common file systems.
std::string filesystem_safe(const std::string& text) {
  std::string safe = text;
  for (char& c : safe) {
    const bool allowed = std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-' || c == '+';
    if (!allowed) {
      c = '_';
    }
  }
  return safe;
}

std::string short_label(const std::string& key) {
  static const std::map<std::string, std::string> labels = {
      {"group_size", "gs"},       {"damp_percent", "damp"},     {"range_shrink", "shrink"},
      {"cd_iterations", "cd"},    {"iterations", "iters"},      {"block_size", "block"},
      {"max_windows", "windows"}, {"block_rows", "rows"},       {"threads_per_rank", "threads"},
      {"memory_budget_gib", "mem"}, {"auto_candidates", "candidates"}, {"max_fallbacks", "fallbacks"}};
  const std::string leaf = leaf_of(key);
  if (leaf == "enabled") {
    return section_of(key);
  }
  const auto found = labels.find(leaf);
  return found == labels.end() ? leaf : found->second;
}

// One (key, list of values) axis of a grid.
struct Axis {
  std::string key;
  std::vector<YAML::Node> values;
};

std::vector<Axis> read_grid(const YAML::Node& sweep, const ConfigSchema& schema, const std::string& file) {
  std::vector<Axis> axes;
  for (const auto& item : sweep) {
    const std::string key = item.first.as<std::string>();
    const std::string where = line_of(item.first, file);
    check_swept_key(schema, key, where);
    const YAML::Node& list = item.second;
    if (!list.IsSequence() || list.size() == 0) {
      throw ConfigError(where + ": sweep key " + key + ": expected a non-empty list of values, found " +
                        (list.IsSequence() ? "an empty list" : list.IsScalar() ? "'" + list.Scalar() + "'" : "a map") +
                        "; write [value] to fix one value for every point");
    }
    Axis axis{key, {}};
    for (const YAML::Node& value : list) {
      axis.values.push_back(value);
    }
    axes.push_back(std::move(axis));
  }
  return axes;
}

size_t grid_size(const std::vector<Axis>& axes, const std::string& file) {
  size_t count = 1;
  for (const Axis& axis : axes) {
    if (count > kMaxSweepPoints / axis.values.size()) {
      throw ConfigError(file + ": the sweep has more than " + std::to_string(kMaxSweepPoints) +
                        " points; split it into several experiment files");
    }
    count *= axis.values.size();
  }
  return count;
}

struct PointSpec {
  std::vector<SweepSetting> settings;
  std::vector<size_t> positions;  // index of each value in its list (grid) or 0
  std::string name;               // given in the points form, else empty
};

std::vector<PointSpec> grid_points(const std::vector<Axis>& axes, const std::string& file) {
  const size_t count = grid_size(axes, file);
  std::vector<PointSpec> points(count);
  for (size_t index = 0; index < count; ++index) {
    // Mixed-radix digits of index, the last axis varying fastest (first key outermost).
    size_t rest = index;
    std::vector<size_t> digits(axes.size());
    for (size_t a = axes.size(); a-- > 0;) {
      digits[a] = rest % axes[a].values.size();
      rest /= axes[a].values.size();
    }
    for (size_t a = 0; a < axes.size(); ++a) {
      points[index].settings.push_back({axes[a].key, axes[a].values[digits[a]]});
      points[index].positions.push_back(digits[a]);
    }
  }
  return points;
}

std::vector<PointSpec> explicit_points(const YAML::Node& list, const ConfigSchema& schema, const std::string& file) {
  const std::string where = line_of(list, file);
  if (!list.IsSequence() || list.size() == 0) {
    throw ConfigError(where + ": sweep points: expected a non-empty list of maps of dotted keys to values");
  }
  if (list.size() > kMaxSweepPoints) {
    throw ConfigError(where + ": the sweep has more than " + std::to_string(kMaxSweepPoints) +
                      " points; split it into several experiment files");
  }
  std::vector<PointSpec> points;
  for (const YAML::Node& entry : list) {
    const std::string entry_where = line_of(entry, file);
    if (!entry.IsMap() || entry.size() == 0) {
      throw ConfigError(entry_where + ": sweep point " + std::to_string(points.size()) +
                        ": expected a non-empty map of dotted keys to values");
    }
    PointSpec point;
    for (const auto& item : entry) {
      const std::string key = item.first.as<std::string>();
      if (key == "name") {
        point.name = item.second.IsScalar() ? item.second.Scalar() : std::string();
        // A leading letter or digit keeps the name from being . or .. (a folder outside
        // output.dir), a hidden folder or an option of a shell command.
        const bool valid = !point.name.empty() && std::isalnum(static_cast<unsigned char>(point.name[0])) &&
                           filesystem_safe(point.name) == point.name;
        if (!valid) {
          throw ConfigError(line_of(item.first, file) + ": sweep point " + std::to_string(points.size()) +
                            ": invalid name '" + point.name + "'; expected a letter or digit followed by letters, "
                            "digits and . _ - +");
        }
        continue;
      }
      check_swept_key(schema, key, line_of(item.first, file));
      point.settings.push_back({key, item.second});
      point.positions.push_back(0);
    }
    if (point.settings.empty()) {
      throw ConfigError(entry_where + ": sweep point " + std::to_string(points.size()) +
                        ": expected at least one key besides name");
    }
    points.push_back(std::move(point));
  }
  return points;
}

std::string point_name(const PointSpec& spec, const nlohmann::ordered_json& base_resolved) {
  if (!spec.name.empty()) {
    return spec.name;
  }
  std::string name;
  for (size_t i = 0; i < spec.settings.size(); ++i) {
    const SweepSetting& setting = spec.settings[i];
    const nlohmann::ordered_json* base = find_value(base_resolved, setting.key);
    const std::string label =
        setting_label(setting.key, setting.value, spec.positions[i], base ? *base : nlohmann::ordered_json());
    name += (name.empty() ? "" : "-") + label;
  }
  return name;
}

void check_names(const std::vector<SweepPoint>& points, const std::string& file) {
  std::map<std::string, size_t> seen;
  for (const SweepPoint& point : points) {
    if (point.name.size() > kMaxPointNameLength) {
      throw ConfigError(file + ": sweep point " + std::to_string(point.index) + " has a name of " +
                        std::to_string(point.name.size()) + " characters, more than " +
                        std::to_string(kMaxPointNameLength) + "; use the points form and give it a name");
    }
    if (point.name == "plots") {
      throw ConfigError(file + ": sweep point " + std::to_string(point.index) +
                        " is named plots, the folder of the sweep's comparison plots; give it another name");
    }
    const auto [found, inserted] = seen.emplace(point.name, point.index);
    if (!inserted) {
      throw ConfigError(file + ": sweep points " + std::to_string(found->second) + " and " +
                        std::to_string(point.index) + " have the same name " + point.name +
                        ": a list repeats a value, or two values give the same label; remove the repeat or "
                        "use the points form with a name per point");
    }
  }
}

// The base experiment: the file without its sweep section, checked as `magrq run` would,
// plus the two settings every point must share.
ExperimentConfig parse_base(const YAML::Node& root, const std::string& file) {
  YAML::Node base = YAML::Clone(root);
  base.remove("sweep");
  ExperimentConfig config = parse_experiment(base, file);
  if (config.calibration.mode != "independent") {
    throw ConfigError(file + ": a sweep needs calibration.mode independent, found " + config.calibration.mode +
                      ": all points share one Hessian store, but sequential mode calibrates each layer on the "
                      "outputs of the quantized layers before it, so its Hessians differ from point to point");
  }
  if (!config.store.reuse) {
    throw ConfigError(file + ": a sweep needs store.reuse true: all points share one Hessian store, which the "
                      "first point (or --calibrate-only) writes and the others reuse");
  }
  return config;
}

SweepPoint build_point(const std::string& yaml, const std::string& file, const ExperimentConfig& base,
                       PointSpec spec, size_t index, size_t count, const nlohmann::ordered_json& base_resolved) {
  SweepPoint point;
  point.index = index;
  point.name = point_name(spec, base_resolved);
  point.settings = std::move(spec.settings);
  // A fresh tree per point keeps the line numbers of the base file in messages.
  point.tree = YAML::Load(yaml);
  point.tree.remove("sweep");
  const std::string where = file + " (sweep point " + std::to_string(index) + " of " + std::to_string(count) +
                            ", " + point.name + ")";
  for (const SweepSetting& setting : point.settings) {
    set_key(point.tree, split_key(setting.key), 0, setting.value, where);
  }
  const std::string dir = (std::filesystem::path(base.output.dir) / point.name).string();
  set_key(point.tree, {"output", "dir"}, 0, YAML::Node(dir), where);
  set_key(point.tree, {"name"}, 0, YAML::Node(base.name.empty() ? point.name : base.name + "-" + point.name), where);
  try {
    point.config = parse_experiment(point.tree, file);
  } catch (const ConfigError& error) {
    throw ConfigError("sweep point " + std::to_string(index) + " (" + point.name + "): " + error.what());
  }
  return point;
}

}  // namespace

std::string setting_label(const std::string& key, const YAML::Node& value, size_t position,
                          const nlohmann::ordered_json& base_value) {
  const std::string label = short_label(key);
  bool flag = false;
  if (base_value.is_boolean() && YAML::convert<bool>::decode(value, flag)) {
    return flag ? label : "no-" + label;
  }
  if (contains_map(value)) {
    return label + "-" + std::to_string(position + 1);
  }
  const std::string text = filesystem_safe(flatten(value));
  if (leaf_of(key) == "method") {
    return text;
  }
  const bool numeric = !text.empty() && (std::isdigit(static_cast<unsigned char>(text[0])) || text[0] == '-' ||
                                         text[0] == '+' || text[0] == '.');
  return numeric ? label + text : label + "-" + text;
}

Sweep parse_sweep(const std::string& yaml, const std::string& where) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::Exception& error) {
    throw ConfigError(where + ": invalid YAML: " + error.what());
  }
  if (!root.IsMap() || !root["sweep"]) {
    throw ConfigError(where + ": no sweep section; expected sweep: with dotted keys mapped to lists of values "
                      "(see docs/sweeps.md)");
  }
  const YAML::Node section = root["sweep"];
  if (!section.IsMap() || section.size() == 0) {
    throw ConfigError(line_of(section, where) + ": key sweep: expected a non-empty map of dotted keys to lists "
                      "of values, or points: a list of maps");
  }
  const ExperimentConfig base = parse_base(root, where);
  ExperimentConfig scratch;
  const ConfigSchema schema = declare_experiment_schema(scratch);

  std::vector<PointSpec> specs;
  if (section["points"]) {
    if (section.size() != 1) {
      throw ConfigError(line_of(section, where) + ": key sweep: has both points and grid keys; write either "
                        "dotted keys with lists (a grid) or points (a list of maps)");
    }
    specs = explicit_points(section["points"], schema, where);
  } else {
    specs = grid_points(read_grid(section, schema, where), where);
  }

  ExperimentConfig base_copy = base;
  const nlohmann::ordered_json base_resolved = declare_experiment_schema(base_copy).resolved();
  Sweep sweep;
  sweep.file = where;
  sweep.dir = base.output.dir;
  for (size_t i = 0; i < specs.size(); ++i) {
    for (const SweepSetting& setting : specs[i].settings) {
      if (std::find(sweep.keys.begin(), sweep.keys.end(), setting.key) == sweep.keys.end()) {
        sweep.keys.push_back(setting.key);
      }
    }
    sweep.points.push_back(build_point(yaml, where, base, std::move(specs[i]), i, specs.size(), base_resolved));
  }
  check_names(sweep.points, where);
  return sweep;
}

Sweep load_sweep(const std::filesystem::path& file) {
  std::ifstream stream(file);
  if (!stream) {
    throw ConfigError("experiment file " + file.string() + " not found or not readable");
  }
  std::stringstream text;
  text << stream.rdbuf();
  return parse_sweep(text.str(), file.string());
}

std::filesystem::path point_dir(const Sweep& sweep, const SweepPoint& point) { return sweep.dir / point.name; }

std::string point_yaml(const Sweep& sweep, const SweepPoint& point) {
  YAML::Emitter emitter;
  emitter << point.tree;
  return "# Point " + std::to_string(point.index) + " (" + point.name + ") of the sweep in " + sweep.file +
         ", written by magrq sweep.\n# Relative paths are relative to the folder magrq runs in.\n" +
         emitter.c_str() + "\n";
}

std::string format_point_list(const Sweep& sweep) {
  std::string text;
  for (const SweepPoint& point : sweep.points) {
    text += std::to_string(point.index) + " " + point.name + "\n";
  }
  return text;
}

}  // namespace magrq::app
