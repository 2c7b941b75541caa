//===- ImportMain.h - The moe-import driver ---------------------*- C++ -*-===//
#pragma once

namespace moe {

/// The whole of moe-import: read the GGUF file, write the layer(s)
/// (tools/lib/Importer.h does the importing).
int moeImportMain(int argc, char **argv);

} // namespace moe
