package change

// failed is the error Do returns when r could not be made: err, as Apply
// returned it.
func failed(r Record, err error) error { return err }
