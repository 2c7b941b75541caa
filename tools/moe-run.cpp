//===- moe-run.cpp - Compile and run an MoE layer -------------------------===//
#include "tools/lib/RunMain.h"

int main(int argc, char **argv) { return moe::moeRunMain(argc, argv); }
