// Package linkmon measures a link, classifies it (fiber, broadband, mobile,
// satellite, intermittent) with hysteresis, and turns the class into the
// sync parameters the sender uses.
package linkmon
