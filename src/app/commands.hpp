// The subcommands of the magrq executable. Each add_*_command function declares its
// options on a new CLI11 subcommand of root and records the function that runs it.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <map>

namespace magrq::app {

// Maps each declared subcommand to the function that runs it after parsing; the
// function returns the process exit code.
using CommandTable = std::map<const CLI::App*, std::function<int()>>;

void add_eval_command(CLI::App& root, CommandTable& table);
void add_generate_command(CLI::App& root, CommandTable& table);
void add_layer_command(CLI::App& root, CommandTable& table);
void add_report_command(CLI::App& root, CommandTable& table);
void add_run_command(CLI::App& root, CommandTable& table);
void add_verify_command(CLI::App& root, CommandTable& table);
void add_hessians_command(CLI::App& root, CommandTable& table);
void add_synth_command(CLI::App& root, CommandTable& table);
void add_synth_layer_command(CLI::App& root, CommandTable& table);
void add_sweep_command(CLI::App& root, CommandTable& table);
void add_tokenize_command(CLI::App& root, CommandTable& table);

}  // namespace magrq::app
