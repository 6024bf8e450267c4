namespace ZeroFL.Data;

/// <summary>
/// A data file exists but cannot be used: unreadable, wrong magic number, truncated, inconsistent
/// with its partner file, or with absurd dimensions. The message is one line that names the file
/// and what is wrong.
/// </summary>
public sealed class DataFormatException : Exception
{
    /// <summary>Creates the exception for <paramref name="filePath"/> with a short description of the problem.</summary>
    public DataFormatException(string filePath, string problem, Exception? inner = null)
        : base($"{filePath}: {problem}", inner)
    {
        FilePath = filePath;
        Problem = problem;
    }

    /// <summary>The file that is wrong, as it was given.</summary>
    public string FilePath { get; }

    /// <summary>What is wrong with it, without the file name.</summary>
    public string Problem { get; }
}

/// <summary>
/// A data set is not where it was looked for. The message is one line that says where it looked
/// and how to get the data.
/// </summary>
public sealed class DataNotFoundException : Exception
{
    /// <summary>Creates the exception with its one-line message.</summary>
    public DataNotFoundException(string message, string? directory = null)
        : base(message)
    {
        Directory = directory;
    }

    /// <summary>The directory that was searched, or null when none was given.</summary>
    public string? Directory { get; }
}
