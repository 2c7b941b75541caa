//===- Target.h - The CPU the kernels are generated for ---------*- C++ -*-===//
//
// Kernels are specialised to a CPU: its vector width and the instructions
// the matmul kernels pick (AVX-512 VNNI's vpdpbusd, AVX2's vpmaddubsw).
// The JIT compiles for the same Target, so the choice and the code agree.
// By default that is the host; naming a lesser CPU (`x86-64-v3` for AVX2
// only, `x86-64-v4` for AVX-512 without VNNI, or any LLVM CPU name such as
// `znver2`, `skylake-avx512`, `cooperlake`, `sapphirerapids`) lets every
// kernel path be generated and tested on a host that can run it.
//
// AMX (Sapphire Rapids' tile unit: amx-tile with amx-bf16 / amx-int8) is
// used only where the host has it and Linux grants this process the tile
// state (arch_prctl ARCH_REQ_XCOMP_PERM, asked once); elsewhere the Target
// drops the AMX features, so the code and the object cache's key agree.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "llvm/Support/Error.h"

#include <string>

namespace moe::codegen {

struct Target {
  std::string cpu;      ///< LLVM CPU name
  std::string features; ///< LLVM feature string; empty: the CPU's own
  unsigned vectorBits = 256; ///< widest f32 vector: 512 with AVX-512F
  bool avx2 = false, fma = false, f16c = false;
  bool avx512bw = false, avx512vnni = false, avx512bf16 = false;
  bool amxBf16 = false; ///< AMX tiles with tdpbf16ps, usable by this process

  /// The host CPU with all its features.
  static llvm::Expected<Target> host();
  /// `name` ("" or "host": the host); an unknown name is an error.
  static llvm::Expected<Target> named(llvm::StringRef name);

  /// `cpu features`, as the object cache's key sees it.
  std::string description() const { return cpu + " " + features; }
};

} // namespace moe::codegen
