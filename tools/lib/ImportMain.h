//===- ImportMain.h - The moe-import driver ---------------------*- C++ -*-===//
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

/// The whole of moe-import: read the GGUF file, write the layer(s).
int moeImportMain(int argc, char **argv);

} // namespace moe
