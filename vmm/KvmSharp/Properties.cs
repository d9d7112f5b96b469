using System.Runtime.CompilerServices;

// The ABI tests check the internal struct layouts and ioctl numbers against the kernel's headers.
[assembly: InternalsVisibleTo("KvmSharp.Tests")]
