#include "model/llama_config.hpp"

#include <fstream>

#include "core/error.hpp"

namespace magrq::model {
namespace {

using detail::concat;
using Json = nlohmann::json;

// Reads keys of one JSON object and names the file and key in every error.
class KeyReader {
 public:
  KeyReader(const Json& object, std::string source) : object_(object), source_(std::move(source)) {}

  bool has(const char* key) const { return object_.contains(key) && !object_[key].is_null(); }

  int64_t positive_int(const char* key) const {
    require(key);
    const Json& value = object_[key];
    if (!value.is_number_integer() || value.get<int64_t>() <= 0) {
      fail(key, value, "a positive integer");
    }
    return value.get<int64_t>();
  }

  int64_t positive_int_or(const char* key, int64_t fallback) const {
    return has(key) ? positive_int(key) : fallback;
  }

  double positive_number(const char* key) const {
    require(key);
    const Json& value = object_[key];
    if (!value.is_number() || value.get<double>() <= 0) {
      fail(key, value, "a positive number");
    }
    return value.get<double>();
  }

  double positive_number_or(const char* key, double fallback) const {
    return has(key) ? positive_number(key) : fallback;
  }

  bool boolean_or(const char* key, bool fallback) const {
    if (!has(key)) {
      return fallback;
    }
    if (!object_[key].is_boolean()) {
      fail(key, object_[key], "true or false");
    }
    return object_[key].get<bool>();
  }

  std::string string_or(const char* key, const std::string& fallback) const {
    if (!has(key)) {
      return fallback;
    }
    if (!object_[key].is_string()) {
      fail(key, object_[key], "a string");
    }
    return object_[key].get<std::string>();
  }

  std::vector<int32_t> token_ids(const char* key) const {
    if (!has(key)) {
      return {};
    }
    const Json& value = object_[key];
    std::vector<int32_t> ids;
    if (value.is_number_integer()) {
      ids.push_back(value.get<int32_t>());
    } else if (value.is_array()) {
      for (const Json& item : value) {
        if (!item.is_number_integer()) {
          fail(key, value, "a token id or a list of token ids");
        }
        ids.push_back(item.get<int32_t>());
      }
    } else {
      fail(key, value, "a token id or a list of token ids");
    }
    return ids;
  }

  [[noreturn]] void fail(const char* key, const Json& value, const char* expected) const {
    throw DataError(concat(source_, ": key \"", key, "\" has the value ", value.dump(),
                           "; expected ", expected));
  }

  [[noreturn]] void fail(const std::string& message) const {
    throw DataError(concat(source_, ": ", message));
  }

 private:
  void require(const char* key) const {
    if (!has(key)) {
      throw DataError(concat(source_, ": required key \"", key, "\" is missing"));
    }
  }

  const Json& object_;
  std::string source_;
};

RopeScaling parse_rope_scaling(const Json& scaling, const std::string& where) {
  const KeyReader keys(scaling, where);
  if (keys.has("rope_type") && keys.has("type") && scaling["rope_type"] != scaling["type"]) {
    keys.fail(concat("\"rope_type\" ", scaling["rope_type"].dump(), " and \"type\" ",
                     scaling["type"].dump(), " disagree"));
  }
  const std::string type = keys.has("rope_type") ? keys.string_or("rope_type", "")
                                                 : keys.string_or("type", "default");
  RopeScaling result;
  if (type == "default") {
    return result;
  }
  if (type == "linear") {
    result.type = RopeScalingType::linear;
    result.factor = keys.positive_number("factor");
    return result;
  }
  if (type == "llama3") {
    result.type = RopeScalingType::llama3;
    result.factor = keys.positive_number("factor");
    result.low_freq_factor = keys.positive_number("low_freq_factor");
    result.high_freq_factor = keys.positive_number("high_freq_factor");
    result.original_max_position_embeddings = keys.positive_int("original_max_position_embeddings");
    if (result.high_freq_factor <= result.low_freq_factor) {
      keys.fail(concat("high_freq_factor ", result.high_freq_factor,
                       " must be greater than low_freq_factor ", result.low_freq_factor));
    }
    return result;
  }
  keys.fail(concat("rope type \"", type, "\" is not supported; magrq supports default, linear "
                   "and llama3 (dynamic, yarn and longrope are not implemented)"));
}

// The three spellings of RoPE settings: transformers 5 "rope_parameters" (theta and
// scaling in one object), or "rope_theta" plus "rope_scaling" (which may be null).
void parse_rope(const Json& json, const std::string& source, LlamaConfig& config) {
  const KeyReader keys(json, source);
  config.rope_theta = keys.positive_number_or("rope_theta", 10000.0);
  if (keys.has("rope_parameters")) {
    const Json& parameters = json["rope_parameters"];
    if (!parameters.is_object()) {
      keys.fail("rope_parameters", parameters, "an object");
    }
    const std::string where = source + " rope_parameters";
    config.rope_theta = KeyReader(parameters, where).positive_number_or("rope_theta", config.rope_theta);
    config.rope_scaling = parse_rope_scaling(parameters, where);
    return;
  }
  if (keys.has("rope_scaling")) {
    const Json& scaling = json["rope_scaling"];
    if (!scaling.is_object()) {
      keys.fail("rope_scaling", scaling, "an object or null");
    }
    config.rope_scaling = parse_rope_scaling(scaling, source + " rope_scaling");
  }
}

void parse_sizes(const KeyReader& keys, LlamaConfig& config) {
  config.hidden_size = keys.positive_int("hidden_size");
  config.intermediate_size = keys.positive_int("intermediate_size");
  config.num_hidden_layers = keys.positive_int("num_hidden_layers");
  config.num_attention_heads = keys.positive_int("num_attention_heads");
  config.vocab_size = keys.positive_int("vocab_size");
  config.num_key_value_heads = keys.positive_int_or("num_key_value_heads", config.num_attention_heads);
  config.max_position_embeddings = keys.positive_int_or("max_position_embeddings", 2048);

  if (keys.has("head_dim")) {
    config.head_dim = keys.positive_int("head_dim");
  } else if (config.hidden_size % config.num_attention_heads != 0) {
    keys.fail(concat("hidden_size ", config.hidden_size, " is not divisible by num_attention_heads ",
                     config.num_attention_heads, " and head_dim is not given"));
  } else {
    config.head_dim = config.hidden_size / config.num_attention_heads;
  }
  if (config.head_dim % 2 != 0) {
    keys.fail(concat("head_dim ", config.head_dim, " is odd; rotary embeddings need an even head_dim"));
  }
  if (config.num_attention_heads % config.num_key_value_heads != 0) {
    keys.fail(concat("num_attention_heads ", config.num_attention_heads,
                     " is not divisible by num_key_value_heads ", config.num_key_value_heads));
  }
}

void check_architecture(const KeyReader& keys) {
  const std::string model_type = keys.string_or("model_type", "llama");
  if (model_type != "llama") {
    keys.fail(concat("model_type \"", model_type, "\" is not supported; expected \"llama\""));
  }
  const std::string activation = keys.string_or("hidden_act", "silu");
  if (activation != "silu") {
    keys.fail(concat("hidden_act \"", activation, "\" is not supported; expected \"silu\""));
  }
}

}  // namespace

LlamaConfig LlamaConfig::from_json(const Json& json, const std::string& source) {
  if (!json.is_object()) {
    throw DataError(concat(source, ": expected a JSON object, found ", json.type_name()));
  }
  const KeyReader keys(json, source);
  LlamaConfig config;
  check_architecture(keys);
  parse_sizes(keys, config);
  parse_rope(json, source, config);

  config.rms_norm_eps = keys.positive_number_or("rms_norm_eps", 1e-6);
  config.tie_word_embeddings = keys.boolean_or("tie_word_embeddings", false);
  config.attention_bias = keys.boolean_or("attention_bias", false);
  config.mlp_bias = keys.boolean_or("mlp_bias", false);
  config.torch_dtype = keys.string_or("torch_dtype", keys.string_or("dtype", ""));

  const std::vector<int32_t> bos = keys.token_ids("bos_token_id");
  if (bos.size() > 1) {
    keys.fail("bos_token_id", json["bos_token_id"], "a single token id");
  }
  if (!bos.empty()) {
    config.bos_token_id = bos.front();
  }
  config.eos_token_ids = keys.token_ids("eos_token_id");
  config.raw = json;
  return config;
}

LlamaConfig LlamaConfig::from_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) {
    throw DataError(concat("config file ", path, " not found or not readable"));
  }
  Json json;
  try {
    json = Json::parse(in);
  } catch (const Json::exception& error) {
    throw DataError(concat("config file ", path, " is not valid JSON: ", error.what()));
  }
  return from_json(json, path.string());
}

std::string linear_name(LinearKind kind) {
  switch (kind) {
    case LinearKind::q_proj: return "q_proj";
    case LinearKind::k_proj: return "k_proj";
    case LinearKind::v_proj: return "v_proj";
    case LinearKind::o_proj: return "o_proj";
    case LinearKind::gate_proj: return "gate_proj";
    case LinearKind::up_proj: return "up_proj";
    case LinearKind::down_proj: return "down_proj";
  }
  throw InternalError("unknown LinearKind");
}

std::string linear_module_name(Index layer, LinearKind kind) {
  const bool attention = input_of(kind) == LinearInput::attn_in || input_of(kind) == LinearInput::attn_out;
  return concat("model.layers.", layer, attention ? ".self_attn." : ".mlp.", linear_name(kind));
}

std::string linear_input_name(LinearInput input) {
  switch (input) {
    case LinearInput::attn_in: return "attn_in";
    case LinearInput::attn_out: return "attn_out";
    case LinearInput::mlp_in: return "mlp_in";
    case LinearInput::mlp_out: return "mlp_out";
  }
  throw InternalError("unknown LinearInput");
}

LinearInput input_of(LinearKind kind) {
  switch (kind) {
    case LinearKind::q_proj:
    case LinearKind::k_proj:
    case LinearKind::v_proj: return LinearInput::attn_in;
    case LinearKind::o_proj: return LinearInput::attn_out;
    case LinearKind::gate_proj:
    case LinearKind::up_proj: return LinearInput::mlp_in;
    case LinearKind::down_proj: return LinearInput::mlp_out;
  }
  throw InternalError("unknown LinearKind");
}

LinearShape linear_shape(const LlamaConfig& config, LinearKind kind) {
  switch (kind) {
    case LinearKind::q_proj: return {config.q_size(), config.hidden_size};
    case LinearKind::k_proj:
    case LinearKind::v_proj: return {config.kv_size(), config.hidden_size};
    case LinearKind::o_proj: return {config.hidden_size, config.q_size()};
    case LinearKind::gate_proj:
    case LinearKind::up_proj: return {config.intermediate_size, config.hidden_size};
    case LinearKind::down_proj: return {config.hidden_size, config.intermediate_size};
  }
  throw InternalError("unknown LinearKind");
}

}  // namespace magrq::model
