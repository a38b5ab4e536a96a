/* static_hello: a statically linked program for the static-startup preset test. */
#include <stdio.h>

int main(void) {
  printf("hello from a static binary\n");
  return 0;
}
