// `magrq synth-layer`: writes a layer input file with a seeded synthetic weight and Hessian.
#include <spdlog/spdlog.h>

#include <string>

#include "app/commands.hpp"
#include "core/synthetic.hpp"
#include "store/layer_file.hpp"

namespace magrq::app {

namespace {

struct SynthLayerArguments {
  std::string output;
  SyntheticLayerOptions layer;
};

int run_synth_layer(const SynthLayerArguments& arguments) {
  arguments.layer.validate();
  const SyntheticLayer layer = make_synthetic_layer(arguments.layer);
  const SyntheticLayerOptions& o = arguments.layer;
  store::write_layer_input(arguments.output, {layer.weight, layer.hessian},
                           {{"generator", std::string("magrq synth-layer")},
                            {"seed", static_cast<int64_t>(o.seed)},
                            {"tokens", static_cast<int64_t>(o.tokens)},
                            {"outlier_channels", static_cast<int64_t>(o.outlier_channels)},
                            {"outlier_scale", o.outlier_scale}});
  spdlog::info("wrote {}: weight {} x {}, Hessian from {} tokens, {} outlier channels, seed {}",
               arguments.output, o.out_features, o.in_features, o.tokens, o.outlier_channels,
               o.seed);
  return 0;
}

}  // namespace

void add_synth_layer_command(CLI::App& root, CommandTable& table) {
  auto arguments = std::make_shared<SynthLayerArguments>();
  CLI::App* sub = root.add_subcommand(
      "synth-layer", "Write a layer input file (/weight, /hessian) with a seeded synthetic layer");
  SyntheticLayerOptions& o = arguments->layer;
  sub->add_option("--out", arguments->output, "Output HDF5 file")->required();
  sub->add_option("--out-features", o.out_features, "Rows of the weight")->capture_default_str();
  sub->add_option("--in-features", o.in_features, "Columns of the weight")->capture_default_str();
  sub->add_option("--tokens", o.tokens, "Calibration tokens summed into the Hessian")
      ->capture_default_str();
  sub->add_option("--outlier-channels", o.outlier_channels,
                  "Input channels with activations --outlier-scale times larger")
      ->capture_default_str();
  sub->add_option("--outlier-scale", o.outlier_scale, "Activation scale of outlier channels")
      ->capture_default_str();
  sub->add_option("--seed", o.seed, "Random seed")->capture_default_str();
  table[sub] = [arguments] { return run_synth_layer(*arguments); };
}

}  // namespace magrq::app
