//===- moe-import.cpp - A GGUF model's MoE layers as .moe text ------------===//
#include "tools/lib/ImportMain.h"

int main(int argc, char **argv) { return moe::moeImportMain(argc, argv); }
