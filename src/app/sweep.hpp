// The sweep: section of an experiment file, expanded into points: runs of the same
// experiment with some keys replaced, which share one Hessian store.
//
// Two forms (docs/sweeps.md):
//   sweep:                        a grid: the Cartesian product of the lists, first key
//     quantizer.bits: [4, 3]      outermost, so this gives bits4-gptq, bits4-rtn,
//     quantizer.method: [gptq, rtn]  bits3-gptq, bits3-rtn in that order
//   sweep:                        explicit points, for grids with invalid combinations;
//     points:                     `name` optionally names a point
//       - {quantizer.bits: 4}
//       - {quantizer.bits: 2, quantizer.cd_iterations: 3, name: w2-cd}
//
// A point is the base YAML tree with its keys replaced, parsed with the normal strict
// schema, so a wrong key or value is reported as in any experiment file, prefixed with the
// point. Keys that change the Hessian store's fingerprint (the model, calibration and
// store sections) are rejected: all points share one store. Each point writes to
// <output.dir>/<point name>/.
#pragma once

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <string>
#include <vector>

#include "app/experiment.hpp"

namespace magrq::app {

// Sweeps larger than this are rejected (a typo in a list multiplies the grid).
inline constexpr size_t kMaxSweepPoints = 10000;

// Maximum length of a point name, in characters. A point name is a folder name.
inline constexpr size_t kMaxPointNameLength = 120;

// One replaced key of a point.
struct SweepSetting {
  std::string key;   // dotted experiment key, for example quantizer.bits
  YAML::Node value;  // as written in the sweep section
};

struct SweepPoint {
  size_t index = 0;  // 0-based position in the expansion order
  std::string name;  // filesystem-safe, unique within the sweep
  std::vector<SweepSetting> settings;
  // The point's experiment: the base tree without the sweep section, with the settings
  // applied, output.dir set to <base output.dir>/<name> and name to <base name>-<name>.
  YAML::Node tree;
  ExperimentConfig config;  // tree parsed with the strict schema
};

struct Sweep {
  std::string file;                // the experiment file, for messages
  std::filesystem::path dir;       // the base output.dir: the sweep's tables and reports
  std::vector<std::string> keys;   // every swept key, in order of first appearance
  std::vector<SweepPoint> points;  // in expansion order
};

// Expands the sweep section of an experiment (YAML text; `where` names it in messages).
// Throws ConfigError naming the file, the key and, for a point's invalid value, the
// point. The errors: a missing or malformed sweep section, an unknown key (with the
// nearest valid key), a key of the model, calibration or store sections, an empty list,
// a sequential calibration, store.reuse false, two points with the same name, or more
// than kMaxSweepPoints points.
Sweep parse_sweep(const std::string& yaml, const std::string& where);

// Reads an experiment file and expands its sweep section (see parse_sweep).
Sweep load_sweep(const std::filesystem::path& file);

// The folder of a point's outputs: <sweep dir>/<point name>.
std::filesystem::path point_dir(const Sweep& sweep, const SweepPoint& point);

// The point's experiment as a YAML document that `magrq run` accepts.
std::string point_yaml(const Sweep& sweep, const SweepPoint& point);

// One line "INDEX NAME" per point, in expansion order (the output of --list).
std::string format_point_list(const Sweep& sweep);

// The label of one setting in a point name: for example bits4, gs-1, gptq, magr or
// no-magr. `position` is the value's index in its list, used for map values.
std::string setting_label(const std::string& key, const YAML::Node& value, size_t position,
                          const nlohmann::ordered_json& base_value);

}  // namespace magrq::app
