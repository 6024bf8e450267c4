using System.Text.Json;

namespace ZeroFL.Cli;

/// <summary>Writes run outputs so that a crash never leaves a half-written file behind.</summary>
public static class RunFiles
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    /// <summary>Serialises <paramref name="value"/> to <paramref name="path"/> via a temporary file and a rename.</summary>
    public static void WriteJsonAtomically(string path, object value) =>
        WriteAtomically(path, JsonSerializer.Serialize(value, Indented) + "\n");

    /// <summary>Writes <paramref name="text"/> to a temporary file, flushes it, then renames it over <paramref name="path"/>.</summary>
    public static void WriteAtomically(string path, string text) => ZeroFL.Engine.IO.AtomicFile.WriteAllText(path, text);
}
