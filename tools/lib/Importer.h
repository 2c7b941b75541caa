//===- Importer.h - A GGUF block's MoE sub-block as .moe text ---*- C++ -*-===//
//
// The importer behind moe-import: what a real model's feed-forward sub-block
// computes, read from the GGUF file's metadata and tensors (Importer.cpp,
// with the architectures' table in Architectures.h; docs/Import.md).
//
//===----------------------------------------------------------------------===//
#pragma once

#include "io/Gguf.h"

#include "llvm/Support/Error.h"

#include <string>

namespace moe {

/// The `.moe` text of the MoE feed-forward sub-block of block `layer` of
/// `file` (function @ffn_blk_<layer>), parsed and verified before it is
/// returned. Errors name the key, tensor or architecture at fault.
llvm::Expected<std::string> importLayer(const gguf::GgufFile &file, int64_t layer);
/// Every block, one function each, as one module.
llvm::Expected<std::string> importAll(const gguf::GgufFile &file);

} // namespace moe
