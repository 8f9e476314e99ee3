#include "store/layer_file.hpp"

#include "core/error.hpp"

namespace magrq::store {

LayerInput read_layer_input(const std::filesystem::path& path) {
  const H5Reader reader(path);
  LayerInput input;
  input.weight = reader.read_matrix("weight");
  input.hessian = reader.read_matrix("hessian");
  const Index in_features = input.weight.cols();
  if (input.hessian.rows() != in_features || input.hessian.cols() != in_features) {
    throw DataError(detail::concat(
        path.string(), ": /weight is ", input.weight.rows(), " x ", in_features, " but /hessian is ",
        input.hessian.rows(), " x ", input.hessian.cols(), "; expected /hessian to be ",
        in_features, " x ", in_features, " (in_features of /weight, squared)"));
  }
  if (input.weight.size() == 0) {
    throw DataError(path.string() + ": /weight is empty; expected at least one row and column");
  }
  return input;
}

void write_layer_input(const std::filesystem::path& path, const LayerInput& input,
                       const std::vector<Attribute>& attributes) {
  H5Writer writer(path);
  writer.write_matrix("weight", input.weight);
  writer.write_matrix("hessian", input.hessian);
  for (const Attribute& attribute : attributes) {
    writer.write_attribute(attribute);
  }
  writer.commit();
}

void write_layer_output(const std::filesystem::path& path, const Matrix& weight_magr,
                        const QuantizedLayer& quantized, const std::vector<Attribute>& attributes) {
  H5Writer writer(path);
  writer.write_matrix("weight_magr", weight_magr);
  writer.write_matrix("weight_dequant", quantized.dequant);
  writer.write_matrix("codes", quantized.codes);
  writer.write_matrix("scales", quantized.scales);
  writer.write_matrix("zeros", quantized.zeros);
  writer.write_vector("g_idx", quantized.g_idx);
  for (const Attribute& attribute : attributes) {
    writer.write_attribute(attribute);
  }
  writer.commit();
}

}  // namespace magrq::store
