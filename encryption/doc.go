// Package encryption protects slices at rest: a keyring of AES-256 keys (one
// current key writes, older keys still read, so keys rotate with jobs in
// flight), a versioned AES-256-GCM envelope whose additional data binds the
// job, collection and slice (a slice copied to another job or slot does not
// decrypt), and zstd compression applied before encryption.
//
// # Keys
//
// A key is written "ID:BASE64" (32 random bytes); `rocketjob keys generate`
// prints one. ROCKETJOB_KEYS holds one or more keys separated by commas, the
// first being the current one:
//
//	export ROCKETJOB_KEYS="k2:...,k1:..."   # k2 writes; k1 still reads
//
// or a key file holds one key per line (first line current) and must not be
// readable by other users. Key material never appears in errors, logs or the
// database: only key ids do.
//
// # Envelope
//
//	byte 0      format version (1)
//	byte 1      flags: 1 = zstd-compressed, 2 = encrypted
//	encrypted:  byte len(key id), key id, 12-byte nonce, ciphertext+tag
//	otherwise:  the (compressed) bytes
//
// Each job gets its own AES key, derived from the master key with HKDF-SHA256
// (salt: the job id), so no two jobs share a GCM key and nonce space.
package encryption
