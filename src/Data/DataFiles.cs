namespace ZeroFL.Data;

/// <summary>Opening data files so that every way of failing is one <see cref="DataFormatException"/> naming the file.</summary>
internal static class DataFiles
{
    /// <summary>
    /// Opens <paramref name="path"/> for reading. A directory ("is a directory, not
    /// <paramref name="kind"/>"), a missing file, a permission problem or any other I/O error
    /// is a <see cref="DataFormatException"/>.
    /// </summary>
    public static FileStream OpenRead(string path, string kind, int bufferSize = 1 << 16, FileOptions options = FileOptions.None)
    {
        try
        {
            if (Directory.Exists(path))
            {
                throw new DataFormatException(path, $"is a directory, not {kind}");
            }
            return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize, options);
        }
        catch (FileNotFoundException e)
        {
            throw new DataFormatException(path, "file not found", e);
        }
        catch (DirectoryNotFoundException e)
        {
            throw new DataFormatException(path, "file not found", e);
        }
        catch (UnauthorizedAccessException e)
        {
            throw new DataFormatException(path, "permission denied", e);
        }
        catch (IOException e)
        {
            throw new DataFormatException(path, $"cannot open ({OneLine(e.Message)})", e);
        }
    }

    /// <summary>An exception message on one line.</summary>
    public static string OneLine(string text) => text.ReplaceLineEndings(" ").Trim();
}
