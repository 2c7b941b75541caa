//===- IRTestUtil.h - Shared helpers of the IR unit tests -------*- C++ -*-===//
#pragma once

#include "ir/Attribute.h"

#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <sstream>
#include <string>

namespace moe::test {

inline const DimExpr T = DimExpr::symbol("T");

/// <root>/examples, from this header's path (<root>/tests/unit).
inline std::filesystem::path examplesDir() {
  return std::filesystem::path(__FILE__).parent_path() / ".." / ".." / "examples";
}

/// The whole file at `p` ("" when it cannot be read).
inline std::string readFile(const std::filesystem::path &p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

inline TensorType f32(Shape d) { return TensorType(std::move(d), ElemType::F32); }
inline TensorType i32(Shape d) { return TensorType(std::move(d), ElemType::I32); }

inline AttrDict attrs(std::initializer_list<std::pair<const char *, Attribute>> l) {
  AttrDict d;
  for (auto &[n, a] : l)
    d.set(n, a);
  return d;
}

/// The example of DESIGN.md ("The IR"), verbatim (aligned, some result
/// types omitted).
inline const char *kDesignExample = R"(func @moe_ffn(%x: tensor<T x 2048 x f32>,
              %gate_inp: tensor<128 x 2048 x f32> {param},
              %up_exps: tensor<128 x 768 x 2048 x q8_0> {param},
              %gate_exps: tensor<128 x 768 x 2048 x q8_0> {param},
              %down_exps: tensor<128 x 2048 x 768 x q8_0> {param})
    -> tensor<T x 2048 x f32> where T in [1, 8192] {
  %logits = matmul %x, %gate_inp          : tensor<T x 128 x f32>
  %probs  = softmax %logits {axis = -1}   : tensor<T x 128 x f32>
  %ids    = topk %probs {k = 8}           : tensor<T x 8 x i32>
  %w      = gather %probs, %ids {axis = 1}: tensor<T x 8 x f32>
  %wsum   = reduce_sum %w {axis = 1, keepdim}
  %wsc    = clamp %wsum {min = 6.1e-5}
  %wn     = div %w, %wsc
  %x3     = reshape %x {shape = [T, 1, 2048]}
  %up     = matmul_id %x3, %up_exps, %ids : tensor<T x 8 x 768 x f32>
  %gate   = matmul_id %x3, %gate_exps, %ids
  %act    = swiglu %gate, %up
  %down   = matmul_id %act, %down_exps, %ids : tensor<T x 8 x 2048 x f32>
  %wn3    = reshape %wn {shape = [T, 8, 1]}
  %wd     = mul %down, %wn3
  %out    = reduce_sum %wd {axis = 1}        : tensor<T x 2048 x f32>
  return %out
}
)";

} // namespace moe::test
