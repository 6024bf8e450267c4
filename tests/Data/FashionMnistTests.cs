using ZeroFL.Data;

namespace ZeroFL.Tests.Data;

public sealed class FashionMnistTests
{
    private IdxFiles files = null!;

    [SetUp]
    public void SetUp() => files = new IdxFiles();

    [TearDown]
    public void TearDown() => files.Dispose();

    [TestCase(false, "-")]
    [TestCase(true, "-")]
    [TestCase(false, ".")]
    public void LoadsAllFourFilesFromDataDir(bool gzip, string separator)
    {
        files.WriteMnistLike(trainCount: 12, testCount: 5, gzip: gzip, suffix: separator);
        var (train, test) = FashionMnist.Load(files.Directory);

        Assert.That((train.Count, test.Count), Is.EqualTo((12, 5)));
        Assert.That((train.Channels, train.Height, train.Width, train.ClassCount), Is.EqualTo((1, 28, 28, 10)));
        Assert.That((train.Name, test.Name), Is.EqualTo(("fashion-mnist/train", "fashion-mnist/test")));
        Assert.That(train.Features, Has.Length.EqualTo(12 * 28 * 28));

        var pixels = IdxFiles.Bytes(12 * 28 * 28, 1);
        Assert.That(train.Features[100], Is.EqualTo(Normalization.FashionMnist.Apply(pixels[100])));
        Assert.That(train.Labels, Is.EqualTo(IdxFiles.Bytes(12, 2, 10).Select(b => (int)b).ToArray()));
    }

    [Test]
    public void MnistUsesItsOwnNormalisation()
    {
        files.WriteMnistLike(trainCount: 3, testCount: 2, side: 8, gzip: true);
        var (train, _) = Mnist.Load(files.Directory);
        var pixels = IdxFiles.Bytes(3 * 8 * 8, 1);
        Assert.That(train.Features[5], Is.EqualTo(Normalization.Mnist.Apply(pixels[5])));
        Assert.That(train.Name, Is.EqualTo("mnist/train"));
        Assert.That(IdxDataset.Load("MNIST", files.Directory).Test.Count, Is.EqualTo(2));
        Assert.Throws<ArgumentException>(() => IdxDataset.Load("cifar", files.Directory));
    }

    [Test]
    public void MissingDataDirectorySaysHowToInstall()
    {
        string missing = Path.Combine(files.Directory, "does-not-exist");
        var error = Assert.Throws<DataNotFoundException>(() => FashionMnist.Load(missing))!;
        Assert.That(error.Message, Does.Contain(missing));
        Assert.That(error.Message, Does.Contain("apt-get install dataset-fashion-mnist"));
        Assert.That(error.Message, Does.Contain("--data-dir"));
        Assert.That(error.Message, Does.Not.Contain('\n'));
    }

    [Test]
    public void MissingFilesAreNamed()
    {
        files.WriteMnistLike(trainCount: 2, testCount: 2);
        File.Delete(files.PathOf("t10k-labels-idx1-ubyte"));
        var error = Assert.Throws<DataNotFoundException>(() => FashionMnist.Load(files.Directory))!;
        Assert.That(error.Message, Does.Contain(files.Directory).And.Contain("t10k-labels-idx1-ubyte[.gz]"));
        Assert.That(error.Message, Does.Not.Contain("train-images"));
        Assert.That(error.Message, Does.Contain("apt-get install dataset-fashion-mnist"));
    }

    [Test]
    public void MnistWithoutDirectorySaysToPassOne()
    {
        var error = Assert.Throws<DataNotFoundException>(() => Mnist.Load(null))!;
        Assert.That(error.Message, Does.Contain("--data-dir"));
    }

    [Test]
    public void LabelOutOfRangeIsAFormatError()
    {
        files.WriteMnistLike(trainCount: 4, testCount: 2);
        string labels = files.WriteLabels("train-labels-idx1-ubyte", [1, 2, 10, 3]);
        var error = Assert.Throws<DataFormatException>(() => FashionMnist.Load(files.Directory))!;
        Assert.That(error.Message, Does.StartWith(labels).And.Contain("label 10"));
    }

    [Test]
    public void CountMismatchIsAFormatError()
    {
        files.WriteMnistLike(trainCount: 4, testCount: 2);
        string labels = files.WriteLabels("t10k-labels-idx1-ubyte", [1, 2, 3]);
        var error = Assert.Throws<DataFormatException>(() => FashionMnist.Load(files.Directory))!;
        Assert.That(error.Message, Does.StartWith(labels).And.Contain("3 labels"));
    }

    [Test]
    public void RealFashionMnistLoadsWhenInstalled()
    {
        if (!File.Exists(Path.Combine(FashionMnist.DefaultDirectory, "train-images-idx3-ubyte.gz"))
            && !File.Exists(Path.Combine(FashionMnist.DefaultDirectory, "train-images-idx3-ubyte")))
        {
            Assert.Ignore($"Fashion-MNIST is not installed in {FashionMnist.DefaultDirectory} (apt-get install dataset-fashion-mnist)");
        }
        var (train, test) = FashionMnist.Load(null);
        Assert.That((train.Count, test.Count), Is.EqualTo((60000, 10000)));
        Assert.That((train.Channels, train.Height, train.Width), Is.EqualTo((1, 28, 28)));
        Assert.That(train.ClassCount, Is.EqualTo(10));
        Assert.That(train.LabelCounts(), Is.All.EqualTo(6000), "Fashion-MNIST is balanced");
        Assert.That(test.LabelCounts(), Is.All.EqualTo(1000));

        double mean = train.Features.Average(v => (double)v);
        Assert.That(mean, Is.EqualTo(0).Within(0.01), "normalised training mean");
    }
}
