package traceid_test

import (
	"fmt"

	"github.com/ferry-dev/ferry/internal/traceid"
)

func ExampleString() {
	fmt.Println(traceid.String("0b6c0a8e-3c1f-4a47-9d51-6d0e8a1d2c3b"))
	// Output: 2071bdcf32ce0c61eac2e46c7b55c65b
}
