using System.Runtime.InteropServices;
using KvmSharp.Abi;
using KvmSharp.Interop;

namespace KvmSharp;

/// <summary>What a path names, following symbolic links (stat(2)'s S_IFMT), which .NET does not expose.</summary>
public enum FileKind
{
    Missing,
    Regular,
    Directory,
    CharacterDevice,
    BlockDevice,
    Fifo,
    Socket,
    Other,
}

public static unsafe class FileKinds
{
    private const uint S_IFMT = 0xF000, S_IFREG = 0x8000, S_IFDIR = 0x4000, S_IFCHR = 0x2000, S_IFBLK = 0x6000,
        S_IFIFO = 0x1000, S_IFSOCK = 0xC000;

    /// <summary>
    /// The kind of file at <paramref name="path"/>; <see cref="FileKind.Missing"/> when it does not exist or cannot
    /// be examined (the caller's open then reports why). Never opens the file, so a FIFO cannot block it.
    /// </summary>
    public static FileKind Of(string path)
    {
        var st = new stat_t();
        if (Libc.stat(path, &st) != 0) return FileKind.Missing;
        return (st.st_mode & S_IFMT) switch
        {
            S_IFREG => FileKind.Regular,
            S_IFDIR => FileKind.Directory,
            S_IFCHR => FileKind.CharacterDevice,
            S_IFBLK => FileKind.BlockDevice,
            S_IFIFO => FileKind.Fifo,
            S_IFSOCK => FileKind.Socket,
            _ => FileKind.Other,
        };
    }

    /// <summary>A phrase for messages: "a directory", "a FIFO", ...</summary>
    public static string Describe(FileKind kind) => kind switch
    {
        FileKind.Missing => "missing",
        FileKind.Regular => "a regular file",
        FileKind.Directory => "a directory",
        FileKind.CharacterDevice => "a character device",
        FileKind.BlockDevice => "a block device",
        FileKind.Fifo => "a FIFO",
        FileKind.Socket => "a socket",
        _ => "not a regular file",
    };

    /// <summary>
    /// Why <paramref name="path"/> cannot serve as <paramref name="what"/>, or null when it is one of
    /// <paramref name="allowed"/> or missing (the caller's open then names that error). The callers throw their own
    /// exception type with it, so every "a FIFO where a file belongs" message reads the same.
    /// </summary>
    public static string? Refusal(string path, string what, string expected, params FileKind[] allowed)
    {
        var kind = Of(path);
        if (kind == FileKind.Missing || Array.IndexOf(allowed, kind) >= 0) return null;
        return $"{what} '{path}' is {Describe(kind)}, not {expected}";
    }
}
