//===- moe-smith.cpp - Random MoE programs, checked differentially --------===//
#include "tools/lib/SmithMain.h"

int main(int argc, char **argv) { return moe::moeSmithMain(argc, argv); }
