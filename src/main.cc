#include "exit_status.h"

int main() { return kExitSuccess; }
